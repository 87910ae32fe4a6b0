package census

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
)

// recorded is a cluster whose nodes answer with dumps captured from real
// nodes (testdata/<set>/<mode>-<file>: a local cluster with one node per
// mode, running upstream kube-proxy v1.34.4 or ours; the IPVS node in the
// kernel VM; one NodePort Service with two endpoints). A
// capture that failed on the node holds its output, then "\nERROR: " and
// the error.
type recorded struct {
	clusters.Cluster
	dir   string
	nodes []clusters.Node
	// prefix maps a node to its captured files' mode prefix; served to
	// the address its proxier answered on when captured.
	prefix, served map[string]string
}

var _ clusters.Cluster = recorded{}

func (r recorded) Nodes() []clusters.Node { return r.nodes }

func (r recorded) ExecOnNode(_ context.Context, node string, cmd ...string) ([]byte, error) {
	file := map[string]string{
		"uname": "uname", "iptables-nft-save": "iptables-nft-save", "iptables-legacy-save": "iptables-legacy-save",
		"nft": "nft.json", "cat": "ip_vs", "ip": "links", clusters.Probe: "proxyMode",
	}[cmd[0]]
	if file == "" {
		return nil, fmt.Errorf("node %s: no capture of %s", node, strings.Join(cmd, " "))
	}
	if cmd[0] == clusters.Probe && !strings.Contains(cmd[len(cmd)-1], "//"+r.served[node]+":") {
		return []byte("refused 0.1 connection refused"), errors.New("exit status 1")
	}
	b, err := os.ReadFile(filepath.Join(r.dir, r.prefix[node]+"-"+file))
	if err != nil {
		return nil, err
	}
	if out, msg, failed := strings.Cut(string(b), "\nERROR: "); failed {
		return []byte(out), errors.New(msg)
	}
	return b, nil
}

// cluster is the recorded set with one node per mode; made maps each
// captured mode to the mode the census is told the node was made to run.
func cluster(set string, made map[string]string) recorded {
	r := recorded{dir: filepath.Join("testdata", set), prefix: map[string]string{}, served: map[string]string{}}
	for i, m := range []string{clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS} {
		if _, err := os.Stat(filepath.Join(r.dir, m+"-uname")); err != nil {
			continue
		}
		name := fmt.Sprintf("node-%d", i+1)
		mode := m
		if made[m] != "" {
			mode = made[m]
		}
		r.nodes = append(r.nodes, clusters.Node{Name: name, IP: fmt.Sprintf("198.18.0.%d", 11+i), Mode: mode})
		r.prefix[name] = m
		r.served[name] = r.nodes[len(r.nodes)-1].IP
	}
	return r
}

func TestCensusOfAMixedClusterNamesEachNodesKernelAndMode(t *testing.T) {
	// Upstream kube-proxy and ours, each captured on its own cluster.
	for _, set := range []string{"kube-proxy", "ours"} {
		t.Run(set, func(t *testing.T) { checkCleanMixed(t, set) })
	}
}

func checkCleanMixed(t *testing.T, set string) {
	c := Take(context.Background(), cluster(set, nil), Start)
	if !c.OK() {
		t.Fatalf("census of a clean mixed cluster failed: %v", c.Failures())
	}
	want := []struct{ name, mode, kernel string }{
		{"node-1", "iptables", "6.18.44-fc-v1300"},
		{"node-2", "nftables", "6.18.44-fc-v1300"},
		// The kernel VM's, not the host's.
		{"node-3", "ipvs", "6.1.0-57-amd64"},
	}
	if len(c.Nodes) != len(want) {
		t.Fatalf("census has %d nodes, want %d", len(c.Nodes), len(want))
	}
	for i, w := range want {
		n := c.Nodes[i]
		if n.Name != w.name || n.Kernel != w.kernel || n.Declared != w.mode || n.Carried != w.mode || len(n.Leftovers) > 0 {
			t.Errorf("node %s = kernel %q declared %q carried %q leftovers %v, want kernel %q, %s throughout and no leftovers (evidence %v)",
				n.Name, n.Kernel, n.Declared, n.Carried, n.Leftovers, w.kernel, w.mode, n.Evidence)
		}
	}
	if ev := c.Nodes[2].Evidence["ipvs"]; !strings.Contains(ev, "4 virtual servers") || !strings.Contains(ev, "kube-ipvs0") {
		t.Errorf("ipvs evidence %q: want the 4 virtual servers and kube-ipvs0 read", ev)
	}
}

func TestCensusNamesTheNodeWithAnotherModesLeftover(t *testing.T) {
	// Captured after `iptables-legacy -t nat -N KUBE-SERVICES` on the
	// nftables node and `nft add table ip kube-proxy` on the iptables one.
	c := Take(context.Background(), cluster("kube-proxy-leftover", nil), End)
	got := c.Failures()
	want := []string{
		"node node-1: leftover nftables state: table ip kube-proxy (0 chains, 0 rules)",
		"node node-2: leftover iptables state: iptables-legacy: KUBE-SERVICES in nat",
	}
	if !slices.Equal(got, want) {
		t.Errorf("failures =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.Nodes[0].Carried != "iptables" || c.Nodes[1].Carried != "nftables" {
		t.Errorf("carried = %s, %s: want iptables, nftables (the leftover is beside the node's own mode)", c.Nodes[0].Carried, c.Nodes[1].Carried)
	}
}

func TestCensusNamesANodeRunningAnotherModeThanItWasMadeFor(t *testing.T) {
	// The rollout that missed a node: made to run nftables, still iptables.
	c := Take(context.Background(), cluster("kube-proxy", map[string]string{"iptables": "nftables"}), Start)
	got := strings.Join(c.Failures(), "\n")
	for _, w := range []string{
		"node node-1: proxier declares iptables, node was made to run nftables",
		"node node-1: kernel carries iptables (iptables-nft: KUBE-SERVICES in nat, filter; KUBE-EXT-LOLE4ISW44XBNF3G, KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS and 5 more chains), node was made to run nftables",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("failures =\n%s\nwant a line %q", got, w)
		}
	}
	if strings.Contains(got, "node-2") || strings.Contains(got, "node-3") {
		t.Errorf("failures name nodes running their own mode:\n%s", got)
	}
}

func TestIPVSModesIPTablesChainsAreNotAnIPTablesLeftover(t *testing.T) {
	b, err := os.ReadFile("testdata/kube-proxy/ipvs-iptables-nft-save")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseIPTablesSave(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if modes, ev := iptablesState("iptables-nft", d, true); !slices.Equal(modes, []string{"ipvs"}) {
		t.Errorf("IPVS node's iptables chains read as %v (%s), want ipvs only", modes, ev)
	}
	// Caught while IPVS mode had written KUBE-SERVICES and not yet its
	// own chains: the kernel's virtual servers say whose it is.
	bare := IPTablesDump{Tables: map[string]*IPTablesTable{"nat": {Chains: []string{"PREROUTING", "KUBE-SERVICES", "KUBE-POSTROUTING"}}}}
	if modes, _ := iptablesState("iptables-nft", bare, true); !slices.Equal(modes, []string{"ipvs"}) {
		t.Errorf("a bare KUBE-SERVICES beside virtual servers read as %v, want ipvs", modes)
	}
	if modes, _ := iptablesState("iptables-nft", bare, false); !slices.Equal(modes, []string{"iptables"}) {
		t.Errorf("a bare KUBE-SERVICES without IPVS state read as %v, want iptables (whose name it is)", modes)
	}
}

func TestAProxierThatDoesNotAnswerFailsTheCensus(t *testing.T) {
	r := cluster("kube-proxy", nil)
	r.nodes[1].IP = "198.18.0.99" // the recorded proxier answers on .12 only
	c := Take(context.Background(), r, Start)
	got := c.Failures()
	if len(got) != 1 || !strings.HasPrefix(got[0], "node node-2: proxier declared no mode (GET /proxyMode): http://198.18.0.99:10249/proxyMode") {
		t.Errorf("failures = %q, want node-2's unanswered /proxyMode alone", got)
	}
}

func TestParseIPVSProcKeepsEveryVirtualServer(t *testing.T) {
	b, err := os.ReadFile("testdata/kube-proxy/ipvs-ip_vs")
	if err != nil {
		t.Fatal(err)
	}
	vss, err := ParseIPVSProc(string(b))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(vss)
	want := "[{TCP 169.254.1.1:32377 rr map[10.244.0.2:80:1 10.244.2.2:80:1]} {TCP 198.18.0.13:32377 rr map[10.244.0.2:80:1 10.244.2.2:80:1]} " +
		"{TCP 10.96.2.153:80 rr map[10.244.0.2:80:1 10.244.2.2:80:1]} {TCP 10.96.0.1:443 rr map[198.18.0.1:40873:1]}]"
	if got != want {
		t.Errorf("ParseIPVSProc =\n%s\nwant\n%s", got, want)
	}
}

func TestACensusOfAClusterNotMadeHereFindsItsModesAndLeftovers(t *testing.T) {
	// No mode the nodes were made to run (kubeconfig): each is held to
	// the mode its proxier declares.
	unknown := func(r recorded) recorded {
		for i := range r.nodes {
			r.nodes[i].Mode = ""
		}
		return r
	}
	c := Take(context.Background(), unknown(cluster("kube-proxy", nil)), Start)
	if !c.OK() {
		t.Errorf("census of a clean cluster of unknown modes failed: %v", c.Failures())
	}
	want := map[string]string{"node-1": "iptables", "node-2": "nftables", "node-3": "ipvs"}
	if got := c.Modes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Modes() = %v, want %v", got, want)
	}
	c = Take(context.Background(), unknown(cluster("kube-proxy-leftover", nil)), Start)
	if got := c.Failures(); len(got) != 2 || !strings.Contains(got[0], "node-1: leftover nftables") || !strings.Contains(got[1], "node-2: leftover iptables") {
		t.Errorf("failures = %q, want each node's leftover", got)
	}
}

// syncing is the recorded cluster with node-1's proxier not synced for
// its first reads: its /metrics says 0 and its kernel carries nothing, as
// a proxier just started whose /healthz already answers 200.
type syncing struct {
	recorded
	reads, syncAfter int
	// noMetric: the proxier's /metrics lacks the sync metric; reads then
	// counts the kernel reads (iptables-save) instead.
	noMetric bool
}

func (s *syncing) ExecOnNode(ctx context.Context, node string, cmd ...string) ([]byte, error) {
	if s.noMetric && node == "node-1" && strings.HasPrefix(cmd[0], "iptables") {
		s.reads++
	}
	if node == "node-1" && cmd[0] == clusters.Probe && strings.HasSuffix(cmd[len(cmd)-1], "/metrics") {
		if s.noMetric {
			return []byte("200 # TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram\n"), nil
		}
		s.reads++
		v := "0"
		if s.reads > s.syncAfter {
			v = "1.7651e+09"
		}
		return []byte("200 # TYPE " + syncMetric + " gauge\n" + syncMetric + " " + v + "\nkubeproxy_sync_proxy_rules_duration_seconds_count 1\n"), nil
	}
	if node == "node-1" && s.reads <= s.syncAfter && strings.HasPrefix(cmd[0], "iptables") {
		return nil, nil
	}
	return s.recorded.ExecOnNode(ctx, node, cmd...)
}

func TestTheStartCensusWaitsForAProxiersFirstSync(t *testing.T) {
	firstSyncPoll = time.Millisecond
	t.Cleanup(func() { firstSyncPoll = time.Second })
	s := &syncing{recorded: cluster("kube-proxy", nil), syncAfter: 3}
	c := Take(context.Background(), s, Start)
	if got := c.Failures(); len(got) != 0 {
		t.Errorf("start census failed %q, want it to wait for node-1's first sync", got)
	}
	if s.reads != 4 {
		t.Errorf("node-1's /metrics read %d times, want 4 (three at 0, then synced)", s.reads)
	}
	if c.Nodes[0].Carried != clusters.ModeIPTables {
		t.Errorf("node-1 carries %q after its sync, want iptables", c.Nodes[0].Carried)
	}

	// A proxier whose /metrics lacks the metric: the census waits for its
	// kernel state instead.
	s = &syncing{recorded: cluster("kube-proxy", nil), syncAfter: 3, noMetric: true}
	if got := Take(context.Background(), s, Start).Failures(); len(got) != 0 {
		t.Errorf("start census without the metric failed %q, want it to wait for node-1's kernel state", got)
	}

	// The end census reads at once: a proxier that is not synced then is
	// what it finds.
	s = &syncing{recorded: cluster("kube-proxy", nil), syncAfter: 3}
	if got := Take(context.Background(), s, End).Failures(); len(got) != 1 || !strings.Contains(got[0], "node node-1: kernel carries no proxier state") {
		t.Errorf("end census failures %q, want node-1 carrying nothing", got)
	}

	// A proxier that never finishes a sync is named, after the wait.
	firstSyncWait = 20 * time.Millisecond
	t.Cleanup(func() { firstSyncWait = 90 * time.Second })
	s = &syncing{recorded: cluster("kube-proxy", nil), syncAfter: 1 << 30}
	got := Take(context.Background(), s, Start).Failures()
	if !slices.ContainsFunc(got, func(f string) bool {
		return strings.HasPrefix(f, "node node-1: proxier has not finished a sync in 20ms ("+syncMetric+" is 0)")
	}) {
		t.Errorf("failures %q, want node-1's unfinished first sync named", got)
	}
}
