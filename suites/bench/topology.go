package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// The node's two links: the client's (the node holds nodeIP there) and
// the backend's. No namespace has a link to the host.
const (
	nodeIP      = "192.168.77.1"
	clientIP    = "192.168.77.2"
	nodeBackIP  = "192.168.78.1"
	backendIP   = "192.168.78.2"
	endpointNet = "172.16.0.0/12"
)

// topology is one run's namespaces: client -> node -> backend. The
// backend accepts any endpoint address (a local route for endpointNet)
// on endpointPort.
type topology struct {
	node, client, backend string
	// names are the namespaces close deletes.
	names   []string
	closers []io.Closer
	wg      sync.WaitGroup
}

// newTopology builds the namespaces, named from prefix (unique per run).
func newTopology(prefix string) (_ *topology, err error) {
	t := &topology{node: prefix + "n", client: prefix + "c", backend: prefix + "b"}
	t.names = []string{t.node, t.client, t.backend}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	for _, ns := range []string{t.node, t.client, t.backend} {
		if err := run("ip", "netns", "add", ns); err != nil {
			return t, err
		}
		if err := run("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return t, err
		}
	}
	steps := [][]string{
		{"ip", "-n", t.node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", t.client},
		{"ip", "-n", t.node, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", t.backend},
		{"ip", "-n", t.node, "addr", "add", nodeIP + "/24", "dev", "eth0"},
		{"ip", "-n", t.node, "addr", "add", nodeBackIP + "/24", "dev", "eth1"},
		{"ip", "-n", t.client, "addr", "add", clientIP + "/24", "dev", "eth0"},
		{"ip", "-n", t.backend, "addr", "add", backendIP + "/24", "dev", "eth0"},
		{"ip", "-n", t.node, "link", "set", "eth0", "up"},
		{"ip", "-n", t.node, "link", "set", "eth1", "up"},
		{"ip", "-n", t.client, "link", "set", "eth0", "up"},
		{"ip", "-n", t.backend, "link", "set", "eth0", "up"},
		{"ip", "-n", t.client, "route", "add", "default", "via", nodeIP},
		{"ip", "-n", t.backend, "route", "add", "default", "via", nodeBackIP},
		{"ip", "-n", t.node, "route", "add", endpointNet, "via", backendIP},
		{"ip", "-n", t.backend, "route", "add", "local", endpointNet, "dev", "lo"},
		{"ip", "netns", "exec", t.node, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return t, err
		}
	}
	ln, err := netns.Listen(t.backend, "tcp", fmt.Sprintf("0.0.0.0:%d", endpointPort))
	if err != nil {
		return t, err
	}
	t.closers = append(t.closers, ln)
	t.serve(ln, func(c net.Conn) { c.Close() })
	return t, nil
}

// forward listens on addr inside the node namespace and relays every
// connection to the same address dialled from here (the host, where the
// apiserver listens on loopback), so the proxier's kubeconfig works as is.
func (t *topology) forward(addr string) error { return t.forwardTo(addr, addr) }

// forwardTo listens on addr inside the node namespace and relays every
// connection to to, dialled from here.
func (t *topology) forwardTo(addr, to string) error {
	ln, err := netns.Listen(t.node, "tcp", addr)
	if err != nil {
		return err
	}
	t.closers = append(t.closers, ln)
	t.serve(ln, func(c net.Conn) {
		defer c.Close()
		up, err := net.Dial("tcp", to)
		if err != nil {
			return
		}
		defer up.Close()
		done := make(chan struct{}, 2)
		go func() { io.Copy(up, c); done <- struct{}{} }()
		go func() { io.Copy(c, up); done <- struct{}{} }()
		<-done
	})
	return nil
}

func (t *topology) serve(ln net.Listener, handle func(net.Conn)) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

// close stops the listeners and deletes the namespaces, and with them
// every rule a proxier wrote.
func (t *topology) close() {
	for _, c := range t.closers {
		c.Close()
	}
	t.wg.Wait()
	for _, ns := range t.names {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func run(name string, args ...string) error {
	out, err := exec.CommandContext(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// backendDir makes a directory whose iptables, iptables-save,
// iptables-restore (and ip6tables*) are the chosen backend's, to put first
// in PATH: what a node's alternatives setting does, without touching it.
// xtables-*-multi dispatch on their argv[0] name, so plain names work.
func backendDir(parent, backend string) (string, error) {
	if backend == "" {
		return "", nil
	}
	multi := "/usr/sbin/xtables-" + backend + "-multi"
	if _, err := os.Stat(multi); err != nil {
		return "", fmt.Errorf("iptables backend %s: %w", backend, err)
	}
	dir := filepath.Join(parent, "iptables-"+backend)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-save", "-restore"} {
			link := filepath.Join(dir, fam+suffix)
			_ = os.Remove(link)
			if err := os.Symlink(multi, link); err != nil {
				return "", fmt.Errorf("iptables backend %s: %w", backend, err)
			}
		}
	}
	return dir, nil
}

// withPath is os.Environ with dir first in PATH ("" = unchanged).
func withPath(dir string) []string {
	env := os.Environ()
	if dir == "" {
		return env
	}
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + dir + ":" + strings.TrimPrefix(kv, "PATH=")
			return env
		}
	}
	return append(env, "PATH="+dir+":/usr/sbin:/usr/bin:/sbin:/bin")
}
