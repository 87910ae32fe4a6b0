//go:build e2e

package services

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/census"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// Live mode switch (label migration): every node's proxier switched from
// MODE to MIGRATE_TO, one node at a time, under client load through a
// ClusterIP and a NodePort, from a pod and from the host of every node.
// Ours restarts with --migrate-from (make before break); any other
// proxier is switched the usual way: stopped, its --cleanup run in the
// old mode, started in the new one.
const (
	// migrationSettle is the load kept after a node serves again before
	// the next node switches, so that a failure belongs to one node.
	migrationSettle = 5 * time.Second
	// classReconnected: a held keep-alive connection closed across the
	// switch and reopened, which the client saw as a broken connection.
	classReconnected = "reconnected"
	migrationServer  = "switched"
	// migrationOldModeGone is how long a node may keep the old mode's
	// state after its proxier serves in the new one: ours waits up to 2
	// minutes for the connections IPVS still carries (proxier/app's
	// drainBound); in the kernel VM, under TCG, the removal of ipvs then
	// took 65 s (one iptables call per rule) and a census read takes
	// seconds.
	migrationOldModeGone = 4 * time.Minute
)

// nodeSwitch is what one node's switch did, as the report entry holds it.
type nodeSwitch struct {
	Node     string `json:"node"`
	From     string `json:"from"`
	To       string `json:"to"`
	How      string `json:"how"`
	WindowMs int64  `json:"windowMs"`
	// GoneMs is restart -> the old mode's state gone from the node (the
	// census finds no leftover): the switch is over only then.
	GoneMs   int64          `json:"goneMs"`
	Requests int            `json:"requests"`
	Failed   int            `json:"failed"`
	ByClass  map[string]int `json:"byClass"`
	First    []string       `json:"first,omitempty"`
	// CleanupFailed is the hand switch's --cleanup that exited non-zero
	// (clusters.Restarted); the switch carried on into the new mode.
	CleanupFailed string `json:"cleanupFailed,omitempty"`
}

var _ = Describe("Live mode switch", Label("migration"), Ordered, func() {
	It("switches every node's proxier to MIGRATE_TO one node at a time under load (new connections at a fixed rate and held keep-alive ones, through a ClusterIP and a NodePort, from a pod and the host of every node) with zero failed requests", Label("tcp"), func(ctx SpecContext) {
		to, err := framework.MigrateToFromEnv(os.LookupEnv, f.Mode)
		Expect(err).NotTo(HaveOccurred())
		if to == "" {
			Skip(framework.EnvMigrateTo + " is not set: the switch changes the cluster's mode under the other specs; make validate FROM= TO= runs it")
		}
		restarter, ok := clusters.As[clusters.ProxierRestarter](f.Cluster)
		if !ok {
			Skip(fmt.Sprintf("provider %s cannot restart a node's proxier in another mode", f.Cluster.Provider()))
		}
		churn, err := framework.ChurnFromEnv(os.LookupEnv)
		Expect(err).NotTo(HaveOccurred())
		switches := switchUnderLoad(ctx, restarter, to, churn)
		failed := 0
		for _, s := range switches {
			failed += s.Failed
		}
		Expect(failed).To(BeZero(), "failed requests during the switch %s -> %s: %s", f.Mode, to, switchSummary(switches))
	}, SpecTimeout(20*time.Minute))
})

// switchUnderLoad sets up the Service and the clients, then switches the
// nodes in order under load and returns what each switch did.
func switchUnderLoad(ctx SpecContext, restarter clusters.ProxierRestarter, to string, c framework.Churn) []nodeSwitch {
	ns, err := f.CreateNamespace(ctx, "migration")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(f.DeleteNamespace(ctx, ns)).To(Succeed()) })
	nodes := f.NodeNames()
	labels := map[string]string{"app": migrationServer}
	Expect(f.DeployNetserver(ctx, framework.Backends{Namespace: ns, Name: migrationServer, Labels: labels, Replicas: int32(2 * len(nodes)), Tune: patientProbe})).To(Succeed())
	svc := mustCreate(ctx, framework.NetserverService(ns, migrationServer, corev1.ServiceTypeNodePort, labels))
	nodePort, err := framework.ServicePort(svc, "http")
	Expect(err).NotTo(HaveOccurred())
	var flows []flow
	for i, node := range nodes {
		name := fmt.Sprintf("client-%d", i+1)
		Expect(f.DeployNetserver(ctx, framework.Backends{Namespace: ns, Name: name, Labels: map[string]string{"app": name}, Replicas: 1, NodeName: node})).To(Succeed())
		pods, err := f.WaitPodsReady(ctx, ns, "app="+name, 1, podsReady)
		Expect(err).NotTo(HaveOccurred())
		ip, err := f.NodeIP(node)
		Expect(err).NotTo(HaveOccurred())
		flows = append(flows,
			flow{f.FromPod(pods[0]), serviceURL(svc.Spec.ClusterIP, 80, "hostname"), c.Rate, c.Keepalive},
			flow{f.FromNode(node), serviceURL(ip, nodePort.NodePort, "hostname"), c.Rate, c.Keepalive})
	}
	_, err = f.WaitEndpoints(ctx, ns, migrationServer, 2*len(nodes), podsReady)
	Expect(err).NotTo(HaveOccurred())
	for _, fl := range flows {
		Expect(framework.Poll(ctx, fl.client.Description+" -> "+fl.target, podsReady, 200*time.Millisecond, func(ctx context.Context) (bool, string) {
			r := f.Probe(ctx, fl.client, framework.HTTP, fl.target, 2*time.Second)
			return r.OK, r.String()
		})).To(Succeed())
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	tl, err := f.WatchEndpoints(wctx, ns, migrationServer)
	Expect(err).NotTo(HaveOccurred())

	from := f.Mode
	change, how := switchChange(from, to)
	began := make([]time.Time, len(nodes))
	windows := make([]time.Duration, len(nodes))
	gone := make([]time.Duration, len(nodes))
	cleanups := make([]string, len(nodes))
	var restartErr error
	batches := flowsUnderLoad(ctx, flows, func() {
		for i, node := range nodes {
			began[i] = time.Now()
			restarted, err := restarter.RestartProxier(ctx, node, change)
			cleanups[i] = restarted.CleanupFailed
			if err != nil {
				restartErr = fmt.Errorf("node %s: %w", node, err)
				return
			}
			windows[i] = restarted.Served.Sub(began[i])
			// The next node waits until this one is rid of the old mode,
			// so that what its removal breaks is counted against it.
			if err := waitOldModeGone(ctx, node, from); err != nil {
				restartErr = err
				return
			}
			gone[i] = time.Since(began[i])
			time.Sleep(migrationSettle)
		}
	})
	// What the load saw is recorded even when a switch failed: the
	// requests that failed up to then are the evidence.
	switches := attribute(nodes, began, flows, batches, tl)
	for i := range switches {
		switches[i].From, switches[i].To, switches[i].How = from, to, how
		switches[i].WindowMs = windows[i].Milliseconds()
		switches[i].GoneMs = gone[i].Milliseconds()
		switches[i].CleanupFailed = cleanups[i]
	}
	recordSwitches(switches)
	Expect(restartErr).NotTo(HaveOccurred(), "switch %s -> %s: %s", from, to, switchSummary(switches))
	for _, n := range f.Cluster.Nodes() {
		Expect(n.Mode).To(Equal(to), "node %s after the switch", n.Name)
	}
	return switches
}

// waitOldModeGone reads node's census until its kernel carries the new
// mode alone, or migrationOldModeGone has passed: a switch that leaves
// the old mode behind fails, naming what the last whole read found.
// (Not Poll: its deadline cut the last read short, and the error named
// the cut exec instead of the leftovers.)
func waitOldModeGone(ctx context.Context, node, from string) error {
	deadline := time.Now().Add(migrationOldModeGone)
	for {
		var n clusters.Node
		for _, cn := range f.Cluster.Nodes() {
			if cn.Name == node {
				n = cn
			}
		}
		if n.Name == "" {
			return fmt.Errorf("node %s is no longer in the cluster", node)
		}
		c := census.TakeNode(ctx, f.Cluster, n)
		if len(c.Problems) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("node %s still carries mode %s %v after its proxier served in %s: %s", node, from, migrationOldModeGone, n.Mode, strings.Join(c.Problems, "; "))
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// switchChange is how a node's proxier switches from one mode to another:
// ours makes before it breaks (--migrate-from); any other proxier is
// stopped, cleaned up in the old mode and started in the new one.
func switchChange(from, to string) (clusters.ProxierChange, string) {
	if f.Proxier == clusters.ProxierOurs {
		return clusters.ProxierChange{Mode: to, Flags: []string{"--migrate-from=" + from}}, "restart with --migrate-from=" + from
	}
	return clusters.ProxierChange{Mode: to, Cleanup: true}, "stop, --cleanup in " + from + ", start in " + to
}

// attribute classifies every failed request (as the churn specs do, plus
// held connections that were reopened) and gives each to the node whose
// switch was under way: from its restart to the next node's.
func attribute(nodes []string, began []time.Time, flows []flow, batches [][]batch.Batch, tl *framework.Timeline) []nodeSwitch {
	out := make([]nodeSwitch, len(nodes))
	for i, n := range nodes {
		out[i] = nodeSwitch{Node: n, ByClass: map[string]int{}}
	}
	owner := func(at time.Time) int {
		// A node whose switch never began (an earlier one failed) owns
		// nothing: its zero time sorts last.
		i := sort.Search(len(began), func(i int) bool { return began[i].IsZero() || began[i].After(at) }) - 1
		return max(i, 0)
	}
	for fi, bs := range batches {
		res := classify(bs, tl)
		for _, b := range bs {
			for _, q := range b.Requests {
				lo, _ := b.CallerWindow(q)
				out[owner(lo)].Requests++
				if b.Kind == "hold" && q.Reconnected && q.OK() {
					res.byClass[classReconnected]++
					res.failures = append(res.failures, fmt.Sprintf("hold %s at %s: %s connection %d", classReconnected, b.Time(q).Format("15:04:05.000"), q.Backend, q.Conn))
					res.at = append(res.at, lo)
				}
			}
		}
		for j, fail := range res.failures {
			s := &out[owner(res.at[j])]
			class := strings.Fields(fail)[1]
			s.ByClass[class]++
			s.Failed++
			if len(s.First) < 5 {
				s.First = append(s.First, flows[fi].client.Description+" -> "+flows[fi].target+": "+fail)
			}
		}
	}
	return out
}

// recordSwitches puts each node's switch in the report: its window and
// failed requests as figures, the whole as an entry make validate reads.
func recordSwitches(switches []nodeSwitch) {
	for _, s := range switches {
		f.RecordFigure(entry.Figure{Name: "migration window " + s.Node, Title: fmt.Sprintf("%s -> %s on %s (%s): restart -> /healthz 200", s.From, s.To, s.Node, s.How), Unit: "ms", Values: []float64{float64(s.WindowMs)}})
		f.RecordFigure(entry.Figure{Name: "migration old mode gone " + s.Node, Title: fmt.Sprintf("%s -> %s on %s: restart -> no %s state left on the node", s.From, s.To, s.Node, s.From), Unit: "ms", Values: []float64{float64(s.GoneMs)}})
		f.RecordFigure(entry.Figure{Name: "migration failed requests " + s.Node, Title: fmt.Sprintf("%s -> %s on %s: failed requests of %d (%s)%s", s.From, s.To, s.Node, s.Requests, classText(s.ByClass), cleanupText(s)), Unit: "requests", Values: []float64{float64(s.Failed)}})
		AddReportEntry("migration node "+s.Node, s)
	}
}

// cleanupText names a hand switch's failed --cleanup; nothing when it
// did not fail.
func cleanupText(s nodeSwitch) string {
	if s.CleanupFailed == "" {
		return ""
	}
	return "; carried on after " + s.CleanupFailed
}

func classText(byClass map[string]int) string {
	if len(byClass) == 0 {
		return "none"
	}
	var out []string
	for c, n := range byClass {
		out = append(out, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func switchSummary(switches []nodeSwitch) string {
	var out []string
	for _, s := range switches {
		out = append(out, fmt.Sprintf("%s: %d (%s; window %d ms, old mode gone %d ms)%s %s", s.Node, s.Failed, classText(s.ByClass), s.WindowMs, s.GoneMs, cleanupText(s), strings.Join(s.First, "; ")))
	}
	return strings.Join(out, " | ")
}
