package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/proxyproof/proxyproof/clusters"
)

// needEngine skips, saying why, where a kind cluster cannot be made here:
// not root (the host rule and nsenter need it), no Docker engine, or not
// the images make kind-images builds.
func needEngine(t *testing.T, p *Provider, spec clusters.Spec) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (a host firewall rule per cluster network, nsenter for the outside client's routes)")
	}
	if err := p.Check(spec); err != nil {
		if strings.Contains(err.Error(), "make kind-images") {
			t.Skipf("no kind cluster can be made here: %v", err)
		}
		t.Fatal(err)
	}
}

// testName is a cluster name unique to this test run.
func testName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, os.Getpid()%100000) }

func mustCreate(t *testing.T, p *Provider, spec clusters.Spec) *Cluster {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		if err := p.Down(context.Background(), spec.Name); err != nil {
			t.Errorf("down %s: %v", spec.Name, err)
		}
	})
	began := time.Now()
	c, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatalf("create %s: %v", spec.Name, err)
	}
	t.Logf("cluster %s with %d nodes up in %s", spec.Name, len(spec.Nodes), time.Since(began).Round(100*time.Millisecond))
	return c.(*Cluster)
}

func TestAKindClusterServesAClusterIPFromPodsNodesAndOutsideThenLeavesNothing(t *testing.T) {
	p := NewProvider()
	spec := clusters.Spec{Name: testName("ppk"), Proxier: clusters.ProxierOurs,
		Nodes: []clusters.NodeSpec{{Mode: clusters.ModeIPTables}, {Mode: clusters.ModeNFTables}}}
	needEngine(t, p, spec)
	c := mustCreate(t, p, spec)
	ctx := context.Background()
	client, err := c.client()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("nodes are Ready with their mode labels", func(t *testing.T) { checkNodes(t, client, c) })
	t.Run("the network is internal and sealed", func(t *testing.T) { checkSealed(t, c) })
	t.Run("a ClusterIP answers from a pod, a node and the outside client's view of the proxier", func(t *testing.T) {
		checkClusterIP(ctx, t, client, c)
	})
	t.Run("an external IP routed to a node answers the outside client", func(t *testing.T) { checkExternalIP(ctx, t, client, c) })

	// A second cluster beside the first, with upstream kube-proxy: its own
	// network and API server, and the first still answers.
	spec2 := clusters.Spec{Name: testName("ppk2"), Proxier: clusters.ProxierKubeProxy, Nodes: []clusters.NodeSpec{{Mode: clusters.ModeNFTables}}}
	c2 := mustCreate(t, p, spec2)
	if c2.rec.Network == c.rec.Network || c2.rec.APIServer == c.rec.APIServer {
		t.Errorf("second cluster shares network %s or API server %s with the first", c2.rec.Network, c2.rec.APIServer)
	}
	if _, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("first cluster's API server stopped answering beside the second: %v", err)
	}
	client2 := mustClient(t, c2)
	checkNodes(t, client2, c2)
	t.Run("upstream kube-proxy serves a ClusterIP on the second cluster", func(t *testing.T) { checkClusterIP(ctx, t, client2, c2) })

	// A killed suite leaves its state dir or not: Down finds the rest by
	// name alone.
	if err := os.RemoveAll(c2.dir); err != nil {
		t.Fatal(err)
	}
	if err := p.Down(ctx, spec2.Name); err != nil {
		t.Errorf("down %s without its state dir: %v", spec2.Name, err)
	}
	checkGone(t, p, spec2.Name)
	if err := c.Destroy(ctx); err != nil {
		t.Errorf("destroy %s: %v", spec.Name, err)
	}
	checkGone(t, p, spec.Name)
}

func mustClient(t *testing.T, c *Cluster) kubernetes.Interface {
	t.Helper()
	client, err := c.client()
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func checkNodes(t *testing.T, client kubernetes.Interface, c *Cluster) {
	t.Helper()
	list, err := client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != len(c.Nodes()) {
		t.Errorf("%d Nodes in the API, want %d", len(list.Items), len(c.Nodes()))
	}
	for _, n := range c.Nodes() {
		i := slices.IndexFunc(list.Items, func(k corev1.Node) bool { return k.Name == n.Name })
		if i < 0 {
			t.Errorf("node %s not in the API", n.Name)
			continue
		}
		k := list.Items[i]
		if !nodeReady(&k) || k.Labels[LabelMode] != n.Mode || len(k.Spec.Taints) != 0 {
			t.Errorf("node %s: ready=%v %s=%q taints=%v, want Ready, %q, untainted", n.Name, nodeReady(&k), LabelMode, k.Labels[LabelMode], k.Spec.Taints, n.Mode)
		}
	}
}

// checkSealed reads settings only; it sends nothing anywhere.
func checkSealed(t *testing.T, c *Cluster) {
	ctx := context.Background()
	n, err := inspectNetwork(ctx, c.rec.Network)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Internal {
		t.Errorf("network %s is not internal", n.Name)
	}
	dump, err := iptables(ctx, "-S", chainIsolation)
	if err != nil {
		t.Fatal(err)
	}
	if err := sealed(dump, n.Bridge(), n.Subnet()); err != nil {
		t.Errorf("host firewall: %v", err)
	}
	// Every container of the cluster sits on that network and no other.
	for _, name := range append(nodeNames(c), c.rec.Outside) {
		out, err := docker(ctx, "inspect", "--format", "{{json .NetworkSettings.Networks}}", name)
		if err != nil {
			t.Fatal(err)
		}
		var nets map[string]any
		if err := json.Unmarshal(out, &nets); err != nil {
			t.Fatal(err)
		}
		if len(nets) != 1 || nets[c.rec.Network] == nil {
			t.Errorf("container %s is on networks %v, want only %s", name, keys(nets), c.rec.Network)
		}
	}
}

func nodeNames(c *Cluster) []string {
	var names []string
	for _, n := range c.Nodes() {
		names = append(names, n.Name)
	}
	return names
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	return k
}

func checkGone(t *testing.T, p *Provider, name string) {
	t.Helper()
	left, err := p.leftovers(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("cluster %s left behind: %v", name, left)
	}
}
