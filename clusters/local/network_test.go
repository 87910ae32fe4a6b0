package local

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

func TestTheUnderlayIsSealedAndRemovedWithoutATrace(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	name := testClusterName(t)
	before := rootSnapshot(t)
	cleanupCluster(t, name)
	nodes := []NodeStatus{
		{Name: "node-1", IP: nodeIP(0), Namespace: nodeNS(name, "node-1")},
		{Name: "node-2", IP: nodeIP(1), Namespace: nodeNS(name, "node-2")},
	}
	if err := wireUnderlay(ctx, name, nodes); err != nil {
		t.Fatal(err)
	}
	if after := rootSnapshot(t); after != before {
		t.Errorf("the host's root namespace changed while the underlay is up:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Nodes reach each other and the forwarder's address over the bridge.
	l := listenIn(t, underlayNS(name), ForwarderIP+":6443")
	defer l.Close()
	for _, n := range nodes {
		c, err := dialerIn(nodeNS(name, n.Name))(ctx, "tcp", ForwarderIP+":6443")
		if err != nil {
			t.Errorf("node %s cannot reach the forwarder address: %v", n.Name, err)
			continue
		}
		c.Close()
	}
	// Leaving the machine: a node's route goes to the sink, which
	// forwards nothing; the others have no route at all.
	out, err := inNS(t, nodeNS(name, "node-1"), "ip", "route", "get", "8.8.8.8")
	if err != nil || !strings.Contains(out, "via "+sinkIP) {
		t.Errorf("node-1's route to 8.8.8.8 = %q (%v), want via the sink %s", out, err, sinkIP)
	}
	for _, ns := range []string{underlayNS(name), sinkNS(name)} {
		if out, err := inNS(t, ns, "ip", "route", "get", "8.8.8.8"); err == nil {
			t.Errorf("namespace %s has a route out: %s", ns, out)
		}
	}
	if out, _ := inNS(t, sinkNS(name), "sysctl", "-n", "net.ipv4.ip_forward"); strings.TrimSpace(out) != "0" {
		t.Errorf("the sink forwards (ip_forward=%q)", out)
	}
	if err := deleteNamespaces(ctx, name); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if after := rootSnapshot(t); after != before {
		t.Errorf("the host's root namespace changed after removal:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := netns.Do(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTheForwarderRelaysTheUnderlayToHostLoopback(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := testClusterName(t)
	cleanupCluster(t, name)
	if err := wireUnderlay(ctx, name, []NodeStatus{{Name: "node-1", IP: nodeIP(0), Namespace: nodeNS(name, "node-1")}}); err != nil {
		t.Fatal(err)
	}
	// An echo server on the host's loopback plays the apiserver.
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	go func() {
		for {
			c, err := api.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	fwdErr := make(chan error, 1)
	go func() {
		fwdErr <- RunForwarder(ctx, underlayNS(name), []string{"198.18.0.1:6443"}, api.Addr().String())
	}()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := waitListening(wctx, nodeNS(name, "node-1"), "198.18.0.1:6443", nil); err != nil {
		t.Fatal(err)
	}
	c, err := dialerIn(nodeNS(name, "node-1"))(ctx, "tcp", "198.18.0.1:6443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Errorf("echo through the forwarder = %q, %v", buf, err)
	}
	// The relayed connection reaches the host from loopback: nothing of the
	// underlay is routed on the host.
	if host, _, _ := net.SplitHostPort(c.LocalAddr().String()); !netip.MustParsePrefix(underlayPrefix).Contains(netip.MustParseAddr(host)) {
		t.Errorf("the node dialled from %s, outside the underlay", host)
	}
	cancel()
	select {
	case err := <-fwdErr:
		if err != nil {
			t.Errorf("forwarder: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the forwarder did not stop with its context")
	}
}

func TestAProxierPortTakenInTheNodeNamespaceIsAClearError(t *testing.T) {
	requireRoot(t)
	name := testClusterName(t)
	cleanupCluster(t, name)
	if err := wireUnderlay(context.Background(), name, []NodeStatus{{Name: "node-1", IP: nodeIP(0), Namespace: nodeNS(name, "node-1")}}); err != nil {
		t.Fatal(err)
	}
	ns := nodeNS(name, "node-1")
	if err := checkPortsFree(ns, nodeIP(0), proxierHealthzPort, proxierMetricsPort); err != nil {
		t.Fatalf("free ports reported taken: %v", err)
	}
	l := listenIn(t, ns, nodeIP(0)+":10256")
	defer l.Close()
	err := checkPortsFree(ns, nodeIP(0), proxierHealthzPort, proxierMetricsPort)
	if err == nil || !strings.Contains(err.Error(), "port clash: 198.18.0.11:10256") || !strings.Contains(err.Error(), ns) {
		t.Errorf("taken healthz port: error %v, want a port clash naming the address and namespace", err)
	}
}

func TestDaemonsStopFromTheirPidFilesEvenIfTheyIgnoreSIGTERM(t *testing.T) {
	requireRoot(t)
	name := testClusterName(t)
	cleanupCluster(t, name)
	if err := wireUnderlay(context.Background(), name, []NodeStatus{{Name: "node-1", IP: nodeIP(0), Namespace: nodeNS(name, "node-1")}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// "trap '' TERM" makes the shell ignore SIGTERM: the SIGKILL path.
	d, err := startDaemon(filepath.Join(dir, "pids"), "stubborn", nodeNS(name, "node-1"), filepath.Join(dir, "x.log"),
		"/bin/sh", []string{"-c", "trap '' TERM; while :; do sleep 0.1; done"}, false)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok, err := livePid(filepath.Join(dir, "pids", "stubborn.pid")); !ok || err != nil {
		t.Fatalf("the pid file does not name the running daemon (%v)", err)
	}
	if err := stopPidFiles(filepath.Join(dir, "pids", "*.pid"), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		t.Fatal("daemon still runs after stopPidFiles")
	}
	if _, err := os.Stat(filepath.Join(dir, "pids", "stubborn.pid")); err == nil {
		t.Error("pid file left behind")
	}
}
