package local

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
)

func TestAnIPVSNodeWithoutIPVSOrAKernelVMIsAClearErrorAndLeavesNothing(t *testing.T) {
	if hostkernel.HasIPVS() {
		t.Skipf("this kernel has ip_vs (%s exists): the error cannot happen here", hostkernel.IPVSProcFile)
	}
	// An empty cache: no kernel VM image, as on a machine without make deps.
	t.Setenv("PROXYPROOF_CACHE", t.TempDir())
	name := testClusterName(t)
	_, err := Create(context.Background(), Spec{Name: name, Nodes: []NodeSpec{{Mode: ModeIPTables}, {Mode: ModeIPVS}}})
	if err == nil {
		t.Fatal("Create succeeded with an ipvs node on a kernel without ip_vs and without a kernel VM image")
	}
	for _, want := range []string{"node-2", "mode ipvs", "kernel VM", "make deps"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !errors.Is(err, ErrModeUnsupported) {
		t.Errorf("error %v is not ErrModeUnsupported", err)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestDestroyingAClusterThatDoesNotExistIsANoOp(t *testing.T) {
	name := testClusterName(t)
	if Exists(name) {
		t.Fatalf("cluster %s exists before the test", name)
	}
	if err := Destroy(context.Background(), name); err != nil {
		t.Errorf("Destroy of a missing cluster: %v", err)
	}
	if left := leftovers(t, name); len(left) > 0 {
		t.Errorf("Destroy of a missing cluster made: %v", left)
	}
}

// create makes a cluster for one test and destroys it at the end.
func create(t *testing.T, spec Spec) *Cluster {
	t.Helper()
	if spec.Name == "" {
		spec.Name = testClusterName(t)
	}
	cleanupCluster(t, spec.Name)
	began := time.Now()
	c, err := Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	rss, _ := c.MemoryRSS(context.Background())
	t.Logf("cluster %s (%d nodes, proxier %s) up in %s, %d MiB RSS", c.Name(), len(c.Nodes()), c.Spec().Proxier,
		time.Since(began).Round(100*time.Millisecond), rss>>20)
	return c
}

func TestAClusterIsSealedRefusesItsNameTwiceAndLeavesNothing(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	before := rootSnapshot(t)
	// The ipvs node is a kernel-VM node where the host lacks ip_vs: its
	// tap and qemu must stay inside the cluster's namespaces too.
	c := create(t, Spec{Nodes: []NodeSpec{{Mode: ModeIPTables}, {Mode: ModeNFTables}, {Mode: ModeIPVS}}})
	name := c.Name()

	t.Run("the host's root namespace is unchanged while it runs", func(t *testing.T) {
		if after := rootSnapshot(t); after != before {
			t.Errorf("root namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("no namespace of the cluster routes anywhere but the underlay and the sink", func(t *testing.T) {
		names, err := clusterNamespaces(name)
		if err != nil {
			t.Fatal(err)
		}
		routes := map[string]string{}
		for _, ns := range names {
			out, err := inNS(t, ns, "ip", "-4", "route", "show", "table", "all")
			if err != nil {
				t.Fatalf("%s: %v: %s", ns, err, out)
			}
			routes["namespace "+ns] = out
		}
		for _, n := range c.Nodes() {
			if n.VM {
				out, err := c.ExecOnNode(ctx, n.Name, "ip", "-4", "route", "show", "table", "all")
				if err != nil {
					t.Fatalf("VM node %s: %v", n.Name, err)
				}
				routes["VM node "+n.Name] = string(out)
			}
		}
		for where, out := range routes {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(line, "default") && !strings.Contains(line, "via "+sinkIP) {
					t.Errorf("%s: default route %q does not point at the sink", where, line)
				}
			}
		}
	})
	t.Run("a VM node runs the cluster's programs from a cached share", func(t *testing.T) {
		// Uncached, every start of a program in the VM read its pages
		// through qemu: 0.4-0.6 s a probe (measured; see Share.Cached).
		for _, n := range c.Nodes() {
			if !n.VM {
				continue
			}
			out, err := c.ExecOnNode(ctx, n.Name, "cat", "/proc/mounts")
			if err != nil {
				t.Fatalf("VM node %s: %v", n.Name, err)
			}
			var opts string
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) >= 4 && f[1] == c.paths.bin() {
					opts = f[3]
				}
			}
			if !strings.Contains(","+opts+",", ",loose,") || !strings.Contains(","+opts+",", ",ro,") {
				t.Errorf("VM node %s: %s mounted with %q, want a read-only cache=loose 9p mount; mounts:\n%s", n.Name, c.paths.bin(), opts, out)
			}
			if out, err := c.ExecOnNode(ctx, n.Name, c.Bin("netprobe"), "now"); err != nil {
				t.Errorf("VM node %s: netprobe from the cached share: %v: %s", n.Name, err, out)
			}
		}
	})
	t.Run("every node is Ready with its own podCIDR inside the cluster CIDR", func(t *testing.T) {
		seen := map[string]bool{}
		for _, n := range c.Nodes() {
			p, err := netip.ParsePrefix(n.PodCIDR)
			if err != nil || !netip.MustParsePrefix(ClusterCIDR).Contains(p.Addr()) || seen[n.PodCIDR] {
				t.Errorf("node %s podCIDR %q", n.Name, n.PodCIDR)
			}
			seen[n.PodCIDR] = true
		}
	})
	t.Run("a second Create with the same name is refused clearly", func(t *testing.T) {
		_, err := Create(ctx, Spec{Name: name})
		if !errors.Is(err, ErrAlreadyUp) || !strings.Contains(err.Error(), "cluster "+name+" is already up (since ") ||
			!strings.Contains(err.Error(), "make cluster-down NAME="+name) {
			t.Fatalf("second Create: %v", err)
		}
		if _, up := upSince(c.paths); !up {
			t.Error("the refused Create took the running cluster down")
		}
	})
	t.Run("Destroy leaves no process, namespace, file or root-namespace change", func(t *testing.T) {
		var pids []int
		for _, glob := range []string{filepath.Join(c.paths.pids(), "*.pid"), filepath.Join(c.paths.controlPlane(), "pids", "*.pid")} {
			files, _ := filepath.Glob(glob)
			for _, f := range files {
				if pid, ok, _ := livePid(f); ok {
					pids = append(pids, pid)
				}
			}
		}
		if len(pids) < 4+2*len(c.Nodes()) {
			t.Errorf("only %d live processes in pid files before Destroy", len(pids))
		}
		if err := Destroy(ctx, name); err != nil {
			t.Fatal(err)
		}
		for _, p := range pids {
			if controlplane.Alive(p) {
				t.Errorf("process %d still runs", p)
			}
		}
		if left := leftovers(t, name); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
		if after := rootSnapshot(t); after != before {
			t.Errorf("root namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

func TestACrashedRunIsCleanedByTheNextCreate(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	c := create(t, Spec{Nodes: []NodeSpec{{}}})
	// kill -9 everything, leave the state and namespaces: a crash.
	var killed []int
	for _, glob := range []string{filepath.Join(c.paths.pids(), "*.pid"), filepath.Join(c.paths.controlPlane(), "pids", "*.pid")} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if pid, ok, _ := livePid(f); ok {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed = append(killed, pid)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for anyAlive(killed) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(leftovers(t, c.Name())) == 0 {
		t.Fatal("the simulated crash left nothing to clean")
	}
	c2, err := Create(ctx, Spec{Name: c.Name(), Nodes: []NodeSpec{{}}})
	if err != nil {
		t.Fatalf("Create after a crash: %v", err)
	}
	client, err := c2.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Discovery().ServerVersion(); err != nil {
		t.Errorf("the recreated cluster's apiserver: %v", err)
	}
}
