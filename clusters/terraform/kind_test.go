package terraform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
)

// A kind cluster declared in HCL with our provider (examples/kind-iptables)
// comes up with its nodes Ready in the module's modes, and its destroy
// leaves no container, network, state dir or kubeconfig file.
func TestAKindClusterDeclaredInHCLComesUpAndItsDestroyLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (PROVIDER=kind: a host firewall rule per cluster network)")
	}
	kp := kind.NewProvider()
	for bin, path := range binaries(t) {
		t.Run(bin, func(t *testing.T) {
			name := fmt.Sprintf("tf%c-%d", bin[0], os.Getpid()%100000)
			spec := clusters.Spec{Name: name, Proxier: clusters.ProxierOurs,
				Nodes: []clusters.NodeSpec{{Mode: clusters.ModeIPTables}, {Mode: clusters.ModeIPTables}}}
			if err := kp.Check(spec); err != nil {
				if strings.Contains(err.Error(), "make kind-images") {
					t.Skipf("no kind cluster can be made here: %v", err)
				}
				t.Fatal(err)
			}
			// Whatever happens, nothing of it outlives the test.
			t.Cleanup(func() { _ = kp.Down(context.Background(), name) })
			p := &Provider{Lookup: mapLookup(map[string]string{EnvDir: "clusters/terraform/examples/kind-iptables", EnvBin: path,
				EnvVars: "name=" + name, "RUN_DIR": t.TempDir()})}
			ctx := context.Background()
			began := time.Now()
			c, err := p.Create(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("cluster %s up through %s in %s", name, bin, time.Since(began).Round(time.Second))
			kubeconfig := c.Kubeconfig()
			checkNodesReady(t, c, clusters.ModeIPTables)
			// The kind provider made it, so its proxier restarts reach
			// through the module's cluster: the churn, scheduler and
			// migration specs need them.
			r, ok := clusters.As[clusters.ProxierRestarter](c)
			if !ok {
				t.Errorf("a kind cluster declared in HCL offers no proxier restart (the churn restart spec skips)")
			} else if served, err := r.RestartProxier(ctx, c.Nodes()[0].Name, clusters.ProxierChange{}); err != nil {
				t.Errorf("restart node %s's proxier through the module's cluster: %v", c.Nodes()[0].Name, err)
			} else {
				t.Logf("node %s's proxier restarted, serving again at %s", c.Nodes()[0].Name, served.Served.Format(time.TimeOnly))
			}
			if rp, ok := clusters.As[clusters.RunningProxier](c); !ok || rp.RunningProxier() != clusters.ProxierOurs {
				t.Errorf("the module's kind cluster reports running proxier %v (found %v), want ours, which the module was given", rp, ok)
			}
			ownModule(t, path, kubeconfig)
			// The own-cluster module's destroy left the cluster there.
			checkNodesReady(t, c, clusters.ModeIPTables)
			began = time.Now()
			if err := c.Destroy(ctx); err != nil {
				t.Fatalf("destroy: %v", err)
			}
			t.Logf("destroyed in %s", time.Since(began).Round(time.Second))
			left, err := kp.Leftovers(ctx, name)
			if err != nil || len(left) > 0 {
				t.Errorf("after destroy: %v left (%v)", left, err)
			}
			if _, err := os.Stat(kubeconfig); err == nil {
				t.Errorf("kubeconfig %s left after destroy", kubeconfig)
			}
			if res := stateResources(t, filepath.Join(c.(*Cluster).WorkDir(), StateFile)); len(res) > 0 {
				t.Errorf("state holds %v after destroy", res)
			}
		})
	}
}

func checkNodesReady(t *testing.T, c clusters.Cluster, mode string) {
	t.Helper()
	if len(c.Nodes()) != 2 {
		t.Fatalf("nodes %+v, want 2", c.Nodes())
	}
	for _, n := range c.Nodes() {
		if n.Mode != mode {
			t.Errorf("node %s mode %q, want %s (the module's node_modes)", n.Name, n.Mode, mode)
		}
	}
	cfg, err := c.RestConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes through the module's kubeconfig: %v", err)
	}
	for _, n := range nodes.Items {
		ready := false
		for _, cond := range n.Status.Conditions {
			ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
		}
		if !ready {
			t.Errorf("node %s not Ready", n.Name)
		}
	}
}

// ownModule runs examples/own-cluster, the shape of a module for a user's
// own cluster, on a cluster it did not make (the kind cluster at
// kubeconfig): the hand-off goes to the kubeconfig provider, which tests
// the proxier the cluster runs whatever PROXIER says, and its destroy
// leaves the cluster there.
func ownModule(t *testing.T, bin, kubeconfig string) {
	t.Helper()
	ctx := context.Background()
	spec := clusters.Spec{Name: fmt.Sprintf("own-%d", os.Getpid()%100000), Proxier: clusters.ProxierOurs,
		Nodes: []clusters.NodeSpec{{Mode: clusters.ModeIPTables}}}
	p := &Provider{Lookup: mapLookup(map[string]string{EnvDir: "clusters/terraform/examples/own-cluster", EnvBin: bin,
		EnvVars: "kubeconfig_path=" + kubeconfig + ",node_mode=iptables", "RUN_DIR": t.TempDir()})}
	c, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatalf("own-cluster module: %v", err)
	}
	if _, ok := clusters.As[clusters.ProxierRestarter](c); ok {
		t.Errorf("a module's own cluster offers proxier restarts: the suite may not restart what it did not make")
	}
	if rp, ok := clusters.As[clusters.RunningProxier](c); !ok || rp.RunningProxier() != clusters.ProxierExisting {
		t.Errorf("a module's own cluster reports running proxier %v (found %v), want %s: PROXIER=ours is not what it runs", rp, ok, clusters.ProxierExisting)
	}
	checkNodesReady(t, c, clusters.ModeIPTables)
	if err := c.Destroy(ctx); err != nil {
		t.Fatalf("own-cluster destroy: %v", err)
	}
}
