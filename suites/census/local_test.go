package census

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/local"
)

// On a real local cluster (an iptables node and an nftables node, our
// proxier): a clean census, then one naming each node after another mode's
// state is put on it by hand, then a clean one again once it is removed.
func TestCensusOfALocalClusterNamesTheNodeGivenAnotherModesLeftover(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the local provider creates network namespaces")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	spec := clusters.Spec{Name: "cen" + strconv.Itoa(os.Getpid()%100000), Proxier: clusters.ProxierOurs,
		Nodes: []clusters.NodeSpec{{Mode: clusters.ModeIPTables}, {Mode: clusters.ModeNFTables}}}
	c, err := local.Provider{}.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Destroy(context.WithoutCancel(ctx)) })
	nodes := c.Nodes()
	ipt, nft := nodes[0].Name, nodes[1].Name

	if got := Take(ctx, c, Start); !got.OK() {
		t.Fatalf("census of a fresh cluster failed:\n%s", got)
	}
	leftovers := []struct {
		node     string
		add, del []string
	}{
		{ipt, []string{"nft", "add", "table", "ip", NFTTable}, []string{"nft", "delete", "table", "ip", NFTTable}},
		{nft, []string{"iptables-legacy", "-w", "-t", "nat", "-N", "KUBE-SERVICES"}, []string{"iptables-legacy", "-w", "-t", "nat", "-X", "KUBE-SERVICES"}},
	}
	for _, l := range leftovers {
		if out, err := c.ExecOnNode(ctx, l.node, l.add...); err != nil {
			t.Fatalf("node %s: %v: %s", l.node, err, out)
		}
	}
	got := Take(ctx, c, End)
	want := []string{
		"node " + ipt + ": leftover nftables state: table ip kube-proxy (0 chains, 0 rules)",
		"node " + nft + ": leftover iptables state: iptables-legacy: KUBE-SERVICES in nat",
	}
	if !slices.Equal(got.Failures(), want) {
		t.Errorf("census after the leftovers:\n%s\nwant failures %q", got, want)
	}
	for _, l := range leftovers {
		if out, err := c.ExecOnNode(ctx, l.node, l.del...); err != nil {
			t.Fatalf("node %s: %v: %s", l.node, err, out)
		}
	}
	if got := Take(ctx, c, End); !got.OK() {
		t.Errorf("census once the leftovers are gone failed:\n%s", got)
	}
}
