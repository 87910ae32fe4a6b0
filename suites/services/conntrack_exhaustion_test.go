//go:build e2e

package services

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// The full node's flow timeouts for the run, shorter than the kernel's
// defaults (time_wait 120 s, udp 30 s, udp stream 120 s) so the table
// drains within a spec. They are the node's own: per network namespace,
// or a kernel VM's. flowTimeout is the longest.
var exhaustionTimeouts = [][2]string{
	{"net.netfilter.nf_conntrack_tcp_timeout_time_wait", "20"},
	{"net.netfilter.nf_conntrack_tcp_timeout_fin_wait", "10"},
	{"net.netfilter.nf_conntrack_tcp_timeout_close_wait", "10"},
	{"net.netfilter.nf_conntrack_tcp_timeout_last_ack", "10"},
	{"net.netfilter.nf_conntrack_udp_timeout", "10"},
	{"net.netfilter.nf_conntrack_udp_timeout_stream", "20"},
}

const (
	flowTimeout = 20 * time.Second
	// gcSlack: the kernel frees an expired entry when its garbage
	// collector or a new flow's eviction scan reaches it, not at once.
	gcSlack = 10 * time.Second
	// The fill: new TCP connections (each leaves an assured TIME_WAIT
	// entry for 20 s) and UDP flows (an entry for 10 s each) a second,
	// for fillFor: 60*20 + 30*10 = 1,500 entries at the steady state,
	// well over headroom.
	fillTCPRate, fillUDPRate = 60, 30
	fillFor                  = 40 * time.Second
	// headroom is the limit above the node's own entries at the start.
	headroom = 500
)

var _ = Describe("Conntrack: table exhaustion", Label("conntrack", "conntrack-exhaustion"), Ordered, func() {
	It("keeps the proxier syncing and healthy while a node's conntrack table is full, fails new connections as the kernel does, and recovers within the flow timeouts", func(ctx SpecContext) {
		node, other, tuner := fullNode()
		nodeIP, otherIP := mustNodeIP(node.Name), mustNodeIP(other)
		ns, err := f.CreateNamespace(ctx, "ctfull")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(f.DeleteNamespace(ctx, ns)).To(Succeed()) })
		// Backends on another node: their readiness probes must not
		// depend on the full table, or the Service would lose them.
		Expect(f.DeployNetserver(ctx, framework.Backends{Namespace: ns, Name: "fill", Labels: map[string]string{"app": "fill"}, Replicas: 2, NodeName: other})).To(Succeed())
		fill, err := f.CreateService(ctx, framework.NetserverService(ns, "fill", corev1.ServiceTypeNodePort, map[string]string{"app": "fill"}))
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WaitEndpoints(ctx, ns, "fill", 2, podsReady)
		Expect(err).NotTo(HaveOccurred())
		out := f.FromOutside()
		fillURL := fmt.Sprintf("http://%s/hostname", framework.HostPort(nodeIP, fill.Spec.Ports[0].NodePort))
		controlURL := fmt.Sprintf("http://%s/hostname", framework.HostPort(otherIP, fill.Spec.Ports[0].NodePort))
		waitRecovered(ctx, out, []string{fillURL, controlURL}, podsReady) // set-up: both nodes programmed the Service (a kernel-VM node under load takes tens of seconds)

		undo, err := f.ExemptHarnessFromConntrack(ctx, node.Name)
		DeferCleanup(func(ctx SpecContext) { Expect(undo(ctx)).To(Succeed()) })
		Expect(err).NotTo(HaveOccurred())
		limit := lowerLimit(ctx, tuner, node)

		By(fmt.Sprintf("filling %s's table (limit %d) from outside through NodePort %d: %d TCP connections and %d UDP flows a second for %s",
			node.Name, limit, fill.Spec.Ports[0].NodePort, fillTCPRate, fillUDPRate, fillFor))
		before, err := f.NodeConntrack(ctx, node.Name)
		Expect(err).NotTo(HaveOccurred())
		s := startSampler(ctx, node.Name)
		launched := time.Now()
		loads := startFill(ctx, out, fillURL, framework.HostPort(nodeIP, fill.Spec.Ports[1].NodePort))
		Expect(s.waitFull(ctx, limit, before.Drop, fillFor)).To(Succeed())
		fullAt := time.Since(launched)

		By("while the table is full: new connections to the node fail, the other node answers, the proxier stays healthy and programs a new Service")
		failed, controlFailed := 0, 0
		for range 10 {
			if !f.Probe(ctx, out, framework.HTTP, fillURL, time.Second).OK {
				failed++
			}
			if !f.Probe(ctx, out, framework.HTTP, controlURL, time.Second).OK {
				controlFailed++
			}
		}
		Expect(controlFailed).To(BeZero(), "the other node's NodePort failed %d of 10 times: the failures are not the full table's", controlFailed)
		// Not asserted per probe: the kernel evicts an unassured entry (a
		// UDP flow of the fill) to make room when it finds one near the new
		// flow's hash bucket, so a probe may get through a full table; the
		// fill's failures and the kernel's drops below are the count.
		By(fmt.Sprintf("%d of 10 new connections to %s failed while its table was full", failed, node.Name))
		healthz := fmt.Sprintf("http://%s/healthz", framework.HostPort(nodeIP, 10256))
		h := f.Probe(ctx, out, "status", healthz, probeWindow)
		Expect(h.OK && strings.HasPrefix(h.Answer, "200")).To(BeTrue(), "%s while the table is full: %v", healthz, h)
		late, programmed := programWhileFull(ctx, ns, node.Name)
		Expect(s.latest().Entries).To(BeNumerically(">=", limit-limit/20), "the table drained before the late Service was programmed: the check proved nothing")

		tcp, udp := loads.wait()
		loadEnd := launched.Add(fillFor)
		By("after the load: new connections recover within the flow timeouts")
		lateURL := fmt.Sprintf("http://%s/hostname", framework.HostPort(nodeIP, late.Spec.Ports[0].NodePort))
		recovered := waitRecovered(ctx, out, []string{fillURL, lateURL}, flowTimeout+gcSlack+time.Minute)
		recovery := recovered.Sub(loadEnd)
		after, err := f.NodeConntrack(ctx, node.Name)
		Expect(err).NotTo(HaveOccurred())
		points := s.stop()
		checkOurMetrics(ctx, out, nodeIP, limit)

		failedTCP, failedUDP := failures(tcp), failures(udp)
		drops, early := after.Drop-before.Drop, after.EarlyDrop-before.EarlyDrop
		By(fmt.Sprintf("full %.1f s after the load began; %d of %d TCP connections and %d of %d UDP flows failed; kernel drops %d, early drops %d, insert failures %d; recovered %.1f s after the load ended",
			fullAt.Seconds(), failedTCP, len(tcp.Requests), failedUDP, len(udp.Requests), drops, early, after.InsertFailed-before.InsertFailed, recovery.Seconds()))
		for _, fig := range []entry.Figure{
			{Name: "conntrack-exhaustion-entries", Title: fmt.Sprintf("Conntrack entries on %s over the fill (limit %d)", node.Name, limit), Unit: "entries", XUnit: "s", Points: points},
			{Name: "conntrack-exhaustion-failed-tcp", Title: "New TCP connections that failed during the fill", Unit: "connections", Values: []float64{float64(failedTCP)}},
			{Name: "conntrack-exhaustion-failed-udp", Title: "New UDP flows that failed during the fill", Unit: "flows", Values: []float64{float64(failedUDP)}},
			{Name: "conntrack-exhaustion-kernel-drops", Title: "Packets the kernel dropped: no conntrack entry could be made", Unit: "packets", Values: []float64{float64(drops)}},
			{Name: "conntrack-exhaustion-early-drops", Title: "Unassured entries the kernel evicted to make room", Unit: "entries", Values: []float64{float64(early)}},
			{Name: "conntrack-exhaustion-programmed-while-full", Title: "A Service created while the table was full: creation to its rules on the full node", Unit: "s", Values: []float64{programmed.Seconds()}},
			{Name: "conntrack-exhaustion-recovery", Title: "Load end to new connections answered again", Unit: "s", Values: []float64{recovery.Seconds()}},
		} {
			f.RecordFigure(fig)
		}
		Expect(drops).To(BeNumerically(">", 0), "the kernel dropped nothing: the table was never full")
		Expect(failedTCP+failedUDP).To(BeNumerically(">", 0), "no new connection of the fill failed")
		Expect(recovery).To(BeNumerically("<=", flowTimeout+gcSlack), "new connections recovered %.1f s after the load ended; its flows expire within %s", recovery.Seconds(), flowTimeout)
	}, SpecTimeout(8*time.Minute))
})

// fullNode is the node whose table the spec fills, another node, and the
// cluster's KernelTuner; it skips, saying why, where it may not.
func fullNode() (clusters.Node, string, clusters.KernelTuner) {
	tuner, ok := clusters.As[clusters.KernelTuner](f.Cluster)
	if !ok {
		Skip(fmt.Sprintf("PROVIDER=%s: the suite did not make this cluster and leaves its nodes' kernels as it found them, so it cannot lower a node's conntrack limit", f.Provider))
	}
	nodes := f.Cluster.Nodes()
	pick := -1
	for i, n := range nodes {
		if n.Kernel == clusters.KernelVM {
			pick = i
			break
		}
	}
	if pick < 0 {
		lower, err := framework.LowerHostLimitFromEnv(os.LookupEnv)
		Expect(err).NotTo(HaveOccurred())
		if !lower {
			Skip(fmt.Sprintf("every node shares the host's kernel, whose nf_conntrack_max is one global value (read-only inside a node's namespace): lowering it would cap every namespace of this machine. "+
				"Give a node its own kernel (%s=auto,vm on the local provider) or set %s=1 to lower the host's for the run", clusters.EnvNodeKernels, framework.EnvConntrackLowerHostLimit))
		}
		pick = len(nodes) - 1
	}
	other := nodes[(pick+1)%len(nodes)].Name
	return nodes[pick], other, tuner
}

func mustNodeIP(node string) string {
	ip, err := f.NodeIP(node)
	Expect(err).NotTo(HaveOccurred())
	return ip
}

// lowerLimit shortens node's flow timeouts and lowers its nf_conntrack_max
// to headroom above its entries now, restoring each whatever happens. It
// returns the limit.
func lowerLimit(ctx context.Context, tuner clusters.KernelTuner, node clusters.Node) uint64 {
	set := func(name, value string) {
		previous, err := tuner.SetSysctl(ctx, node.Name, name, value)
		if previous != "" {
			DeferCleanup(func(ctx SpecContext) {
				_, err := tuner.SetSysctl(ctx, node.Name, name, previous)
				Expect(err).NotTo(HaveOccurred(), "restore %s=%s on %s", name, previous, node.Name)
			})
		}
		Expect(err).NotTo(HaveOccurred())
	}
	for _, t := range exhaustionTimeouts {
		set(t[0], t[1])
	}
	// Above the entries that outlast the fill, not above the raw count:
	// what earlier specs left (their clients' TIME_WAIT under the default
	// 120 s) expires during the fill, and a limit over it drained below
	// full while the fill ran (a kernel-VM run after the churn specs).
	// Those closed connections go first: counted as lasting or not, a
	// share of them expired while the table was over its limit and the
	// fill, refused then, had not replaced them (an ipvs run: 2,310
	// entries at the start over a limit of 1,917, under 95% of it 5 s
	// after it read full).
	cleared, err := f.ClearClosedConntrack(ctx, node.Name)
	Expect(err).NotTo(HaveOccurred())
	u, err := f.NodeConntrack(ctx, node.Name)
	Expect(err).NotTo(HaveOccurred())
	lasting, err := f.NodeConntrackLasting(ctx, node.Name, fillFor)
	Expect(err).NotTo(HaveOccurred())
	limit := lasting + headroom
	By(fmt.Sprintf("%s holds %d conntrack entries once the %d entries of closed connections are cleared, %d of them lasting past the %s fill: limit %d", node.Name, u.Entries, cleared, lasting, fillFor, limit))
	if node.Kernel != clusters.KernelVM {
		By(fmt.Sprintf("lowering the HOST's nf_conntrack_max to %d (%s=1): every network namespace of this machine is capped until it is restored", limit, framework.EnvConntrackLowerHostLimit))
	}
	set("net.netfilter.nf_conntrack_max", strconv.FormatUint(limit, 10))
	return limit
}

// fillLoads are the fill's two loads, running.
type fillLoads struct {
	wg       sync.WaitGroup
	tcp, udp batch.Batch
	errs     [2]error
}

func startFill(ctx context.Context, src framework.Source, url, udpTarget string) *fillLoads {
	l := &fillLoads{}
	l.wg.Add(2)
	go func() {
		defer GinkgoRecover()
		defer l.wg.Done()
		l.tcp, l.errs[0] = f.Load(ctx, src, url, fillTCPRate, fillFor)
	}()
	go func() {
		defer GinkgoRecover()
		defer l.wg.Done()
		l.udp, l.errs[1] = f.UDPLoad(ctx, src, udpTarget, fillUDPRate, fillFor)
	}()
	return l
}

func (l *fillLoads) wait() (tcp, udp batch.Batch) {
	l.wg.Wait()
	Expect(l.errs[0]).NotTo(HaveOccurred())
	Expect(l.errs[1]).NotTo(HaveOccurred())
	return l.tcp, l.udp
}

func failures(b batch.Batch) int {
	n := 0
	for _, c := range b.Failures() {
		n += c
	}
	return n
}
