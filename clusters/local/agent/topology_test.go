package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
	"github.com/proxyproof/proxyproof/proxier/netns"
)

// topology is a miniature of what the lifecycle builds: an underlay bridge
// in <C>-ul, a sink at 198.18.0.254 that forwards nothing, and node
// namespaces <C>-node-i with eth0 198.18.0.(10+i)/24, default via the sink.
type topology struct {
	name  string // <C>
	nodes []string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newTopology(t *testing.T, nodes int) *topology {
	t.Helper()
	c := fmt.Sprintf("agt%d", os.Getpid()%100000)
	tp := &topology{name: c}
	ul, sink := c+"-ul", c+"-sink"
	t.Cleanup(func() { tp.remove(t) })
	tp.remove(t) // a crashed earlier run with this pid
	run(t, "ip", "netns", "add", ul)
	run(t, "ip", "-n", ul, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", ul, "link", "set", "br0", "up")
	run(t, "ip", "-n", ul, "addr", "add", "198.18.0.1/24", "dev", "br0")
	attach := func(ns, port, addr string) {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ul, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		run(t, "ip", "-n", ul, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	attach(sink, "sink", "198.18.0.254")
	for i := 1; i <= nodes; i++ {
		ns := fmt.Sprintf("%s-node-%d", c, i)
		attach(ns, fmt.Sprintf("node%d", i), fmt.Sprintf("198.18.0.%d", 10+i))
		run(t, "ip", "-n", ns, "route", "add", "default", "via", "198.18.0.254")
		tp.nodes = append(tp.nodes, ns)
	}
	return tp
}

// podNamespaces lists the pod namespaces of this topology still present.
func (tp *topology) podNamespaces() []string {
	entries, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tp.name+"-p-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func (tp *topology) remove(t *testing.T) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tp.name+"-") {
			if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
				t.Logf("ip netns del %s: %v: %s", e.Name(), err, out)
			}
		}
	}
}

var buildOnce sync.Once

// controlPlaneBinaries builds the pinned control plane when the cache lacks
// it, as the controlplane tests do: a skip would hide the test on CI.
func controlPlaneBinaries(t *testing.T) controlplane.Paths {
	t.Helper()
	buildOnce.Do(func() {
		if _, err := controlplane.Binaries(""); err == nil {
			return
		}
		script, err := filepath.Abs(filepath.Join("..", "..", "..", "hack", "controlplane", "build.sh"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("control plane binaries missing; running %s (5-15 minutes on a cold Go cache)", script)
		var stderr bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stderr = &stderr
		if out, err := cmd.Output(); err != nil {
			t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", script, err, out, stderr.String())
		}
	})
	p, err := controlplane.Binaries("")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// buildNetserver builds the static test server into dir.
func buildNetserver(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "netserver")
	cmd := exec.Command("go", "build", "-o", out, "github.com/proxyproof/proxyproof/clusters/local/cmd/netserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build netserver: %v: %s", err, b)
	}
	return out
}

// httpGetIn fetches url from inside network namespace ns.
func httpGetIn(ns, url string) (int, string, error) {
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := netns.Do(ns, func() error {
					var d net.Dialer
					var err error
					c, err = d.DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
