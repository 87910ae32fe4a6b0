package census

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/proxyproof/proxyproof/clusters"
)

// When a census is taken in a run of the suite; other callers (a mode
// switch) label theirs as they like.
const (
	Start = "start"
	End   = "end"
)

// MetricsPort is where kube-proxy (and ours) serve /proxyMode.
const MetricsPort = "10249"

// Census is every node's census at one moment.
type Census struct {
	When  string    `json:"when"`
	At    time.Time `json:"at"`
	Nodes []Node    `json:"nodes"`
}

// Node is one node's entry (the package doc gives the JSON).
type Node struct {
	Name      string            `json:"name"`
	Expected  string            `json:"expected"`
	Kernel    string            `json:"kernel"`
	Declared  string            `json:"declared"`
	Carried   string            `json:"carried"`
	Leftovers []string          `json:"leftovers,omitempty"`
	Evidence  map[string]string `json:"evidence,omitempty"`
	Problems  []string          `json:"problems,omitempty"`
}

// OK says whether no node has a problem.
func (c Census) OK() bool { return len(c.Failures()) == 0 }

// Failures are the problems, one line each with the node named.
func (c Census) Failures() []string {
	var out []string
	for _, n := range c.Nodes {
		for _, p := range n.Problems {
			out = append(out, fmt.Sprintf("node %s: %s", n.Name, p))
		}
	}
	return out
}

// Modes are the modes the census found, node by node ("n1=iptables"),
// declared if answered, else carried: what h3's kubeconfig provider
// reads of a cluster it did not make.
func (c Census) Modes() map[string]string {
	out := map[string]string{}
	for _, n := range c.Nodes {
		out[n.Name] = n.Declared
		if out[n.Name] == "" {
			out[n.Name] = n.Carried
		}
	}
	return out
}

// Take reads every node of cluster. An error reading one node becomes that
// node's problem, so the census always names every node; ctx bounds the
// whole census.
//
// The start census first waits for each node's proxier to finish a sync
// (waitFirstSync): a cluster just made has proxiers that answer /healthz
// before their first sync, as kube-proxy does, and a census read then
// found a node carrying nothing.
func Take(ctx context.Context, c clusters.Cluster, when string) Census {
	cen := Census{When: when, At: time.Now().UTC()}
	for _, n := range c.Nodes() {
		var waited string
		began := time.Now()
		if when == Start {
			waited = waitFirstSync(ctx, c, n)
		}
		node := TakeNode(ctx, c, n)
		// A proxier whose metric could not be read or is absent (upstream
		// kube-proxy's node-1 was once found empty, before its first
		// sync) is given the same time to put anything in its kernel.
		for when == Start && waited == "" && len(node.Evidence) == 0 && time.Since(began) < firstSyncWait && ctx.Err() == nil {
			time.Sleep(firstSyncPoll)
			node = TakeNode(ctx, c, n)
		}
		if waited != "" {
			node.Problems = append(node.Problems, waited)
		}
		cen.Nodes = append(cen.Nodes, node)
	}
	if when == Start {
		cen.At = time.Now().UTC()
	}
	return cen
}

// syncMetric is the time of the proxier's last completed sync, 0 before
// the first; kube-proxy and ours export it.
const syncMetric = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"

// firstSyncWait bounds the wait for one node's first sync (a kernel-VM
// node's first sync takes seconds); firstSyncPoll is the pause between
// reads. Variables for the tests.
var firstSyncWait, firstSyncPoll = 90 * time.Second, time.Second

// waitFirstSync waits until node n's proxier reports a completed sync
// (syncMetric above 0 on its /metrics). /healthz cannot tell: it answers
// 200 from the start. A proxier whose metrics do not answer or lack the
// metric is not waited for (the census reports what it finds); one still
// at 0 after firstSyncWait is a problem, returned.
func waitFirstSync(ctx context.Context, c clusters.Cluster, n clusters.Node) string {
	if n.IP == "" {
		return ""
	}
	url := "http://" + net.JoinHostPort(n.IP, MetricsPort) + "/metrics"
	deadline := time.Now().Add(firstSyncWait)
	for {
		// status, not http: http keeps only the first 4 KiB of a body, and
		// the metric comes after the Go runtime's.
		b, err := c.ExecOnNode(ctx, n.Name, clusters.Probe, "-timeout", "5s", "status", url)
		if err != nil {
			return ""
		}
		synced, found := lastSync(string(b))
		if !found || synced {
			return ""
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("proxier has not finished a sync in %s (%s is 0)", firstSyncWait, syncMetric)
		}
		select {
		case <-ctx.Done():
			return fmt.Sprintf("proxier had not finished a sync when the census had to go on (%s is 0): %v", syncMetric, context.Cause(ctx))
		case <-time.After(firstSyncPoll):
		}
	}
}

// lastSync reads syncMetric from netprobe status's answer ("200 " and
// the /metrics text): whether a sync has completed, and whether the
// metric is there at all. A body that is no metrics text has none.
func lastSync(answer string) (synced, found bool) {
	code, body, _ := strings.Cut(answer, " ")
	if code != "200" {
		return false, false
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return false, false
	}
	mf, ok := families[syncMetric]
	if !ok || len(mf.GetMetric()) == 0 {
		return false, false
	}
	return mf.GetMetric()[0].GetGauge().GetValue() > 0, true
}

// TakeNode reads one node.
func TakeNode(ctx context.Context, c clusters.Cluster, n clusters.Node) Node {
	out := Node{Name: n.Name, Expected: n.Mode}
	var problems []string
	if b, err := c.ExecOnNode(ctx, n.Name, "uname", "-r"); err != nil {
		problems = append(problems, fmt.Sprintf("kernel not read (uname -r): %v", err))
	} else {
		out.Kernel = strings.TrimSpace(string(b))
	}
	declared, err := readDeclared(ctx, c, n)
	if err != nil {
		problems = append(problems, err.Error())
	}
	var k Kernel
	if k.IPTables, err = readIPTables(ctx, c, n.Name); err != nil {
		problems = append(problems, "iptables state not read: "+err.Error())
	}
	if k.NFT, err = readNFT(ctx, c, n.Name); err != nil {
		problems = append(problems, "nftables state not read: "+err.Error())
	}
	if k.IPVS, k.IPVSDevice, err = readIPVS(ctx, c, n.Name); err != nil {
		problems = append(problems, "IPVS state not read: "+err.Error())
	}
	out = Classify(out, declared, k)
	out.Problems = append(problems, out.Problems...)
	return out
}

// readDeclared asks the node's proxier for its mode at the node's address,
// then at 127.0.0.1 (kube-proxy's default metricsBindAddress), from the
// node itself with the probe.
func readDeclared(ctx context.Context, c clusters.Cluster, n clusters.Node) (string, error) {
	var errs []string
	for _, host := range []string{n.IP, "127.0.0.1"} {
		if host == "" {
			continue
		}
		url := "http://" + net.JoinHostPort(host, MetricsPort) + "/proxyMode"
		b, err := c.ExecOnNode(ctx, n.Name, clusters.Probe, "-timeout", "5s", "http", url)
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v %s", url, err, firstLine(b)))
	}
	return "", fmt.Errorf("proxier declared no mode (GET /proxyMode): %s", strings.Join(errs, "; "))
}

// Kernel is what the readers found on one node.
type Kernel struct {
	// IPTables is keyed by backend: "iptables-nft", "iptables-legacy".
	IPTables   map[string]IPTablesDump
	NFT        NFTDump
	IPVS       []VirtualServer
	IPVSDevice bool
}

// modeOrder is the order modes are listed in.
var modeOrder = []string{clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS}

// Present is the evidence of each mode whose state k holds.
func (k Kernel) Present() map[string]string {
	ev := map[string][]string{}
	ipvsKernel, ipvsSeen := ipvsState(k.IPVS, k.IPVSDevice)
	for _, backend := range []string{"iptables-nft", "iptables-legacy"} {
		d, ok := k.IPTables[backend]
		if !ok {
			continue
		}
		modes, seen := iptablesState(backend, d, ipvsKernel)
		for _, m := range modes {
			ev[m] = append(ev[m], seen)
		}
	}
	if ok, seen := nftState(k.NFT); ok {
		ev[clusters.ModeNFTables] = append(ev[clusters.ModeNFTables], seen)
	}
	if ipvsKernel {
		// Before iptables: the virtual servers are what IPVS mode is.
		ev[clusters.ModeIPVS] = append([]string{ipvsSeen}, ev[clusters.ModeIPVS]...)
	}
	out := map[string]string{}
	for m, s := range ev {
		out[m] = strings.Join(s, "; ")
	}
	return out
}

// Classify fills n's declared and carried modes, leftovers and problems
// from what was read. n.Expected is the mode the node was made to run; an
// empty declared mode is a proxier that did not answer.
//
// Carried is the expected mode when its state is there, else the one mode
// found, else "" (several found and none expected: all are leftovers).
// Every other mode found is a leftover.
//
// A node with no expected mode (a cluster the suite did not make, whose
// modes the census is asked to find) is held to the mode its proxier
// declares: only leftovers beside it, or a kernel carrying another, fail.
func Classify(n Node, declared string, k Kernel) Node {
	n.Declared = declared
	n.Evidence = k.Present()
	want := n.Expected
	if want == "" {
		want = declared
	}
	var found []string
	for _, m := range modeOrder {
		if _, ok := n.Evidence[m]; ok {
			found = append(found, m)
		}
	}
	switch {
	case slices.Contains(found, want):
		n.Carried = want
	case len(found) == 1:
		n.Carried = found[0]
	}
	for _, m := range found {
		if m != n.Carried {
			n.Leftovers = append(n.Leftovers, m)
		}
	}
	madeFor := "node was made to run " + want
	if n.Expected == "" {
		madeFor = "its proxier declares " + want
	}
	if declared != "" && n.Expected != "" && declared != n.Expected {
		n.Problems = append(n.Problems, fmt.Sprintf("proxier declares %s, node was made to run %s", declared, n.Expected))
	}
	switch {
	case len(found) == 0:
		n.Problems = append(n.Problems, fmt.Sprintf("kernel carries no proxier state (%s)", madeFor))
	case want == "":
		// Neither made for nor declaring a mode: the unread /proxyMode is
		// the problem, already named; what the kernel carries stands.
	case n.Carried == "":
		n.Problems = append(n.Problems, fmt.Sprintf("kernel carries %s but not %s (%s)", strings.Join(found, " and "), want, madeFor))
	case n.Carried != want:
		n.Problems = append(n.Problems, fmt.Sprintf("kernel carries %s (%s), %s", n.Carried, n.Evidence[n.Carried], madeFor))
	}
	for _, m := range n.Leftovers {
		n.Problems = append(n.Problems, fmt.Sprintf("leftover %s state: %s", m, n.Evidence[m]))
	}
	return n
}
