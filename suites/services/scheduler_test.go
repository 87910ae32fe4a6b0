//go:build e2e

package services

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
	"github.com/proxyproof/proxyproof/suites/stats"
)

// Load-balancing specs (label scheduler): how a Service spreads new
// connections, judged statistically where the proxier chooses at random.
// Each false failure rate is at most 1 in 1,000; a chi-square case sends
// enough requests that a backend getting twice its share fails with
// probability above 0.999 (stats.SampleSize).
const (
	lbBackends = 4 // endpoints of the Services under test
	lbClients  = 6 // client pods, spread over the nodes
	lbAlpha    = 0.001
	lbPower    = 0.999
	// lbSetup bounds the fixture's set-up: pods, Services, and every
	// source reaching every backend (kernel-VM nodes answer in seconds).
	lbSetup = 6 * time.Minute
)

// lbFixture is what every load-balancing spec shares.
type lbFixture struct {
	ns       string
	backends []string // pod names, which the netserver answers
	clients  []corev1.Pod
	// client balances the single-client specs' connections: the first
	// client, or the one onlyIn chose for the modes a spec judges.
	client   corev1.Pod
	spread   *corev1.Service // NodePort, no affinity
	sticky   *corev1.Service // NodePort, ClientIP affinity
	expiring *corev1.Service // ClusterIP, ClientIP affinity, timeoutSeconds 2
}

// source is a client and the URL it reaches the Service under test by.
type source struct {
	framework.Source
	url string
}

// sources are every client kind: the client pods, every node and the
// outside client (through the NodePort of the first node when svc has
// one).
func (fx *lbFixture) sources(svc *corev1.Service) []source {
	return fx.sourcesOn(svc, "")
}

// sourcesOn are the sources whose connections node balances (all when
// node is ""): its client pods, itself, and the outside client through
// its NodePort when svc has one.
func (fx *lbFixture) sourcesOn(svc *corev1.Service, node string) []source {
	var out []source
	cip := serviceURL(svc.Spec.ClusterIP, 80, "hostname")
	for _, c := range fx.clients {
		if node == "" || c.Spec.NodeName == node {
			out = append(out, source{f.FromPod(c), cip})
		}
	}
	for _, n := range f.NodeNames() {
		if node == "" || n == node {
			out = append(out, source{f.FromNode(n), cip})
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort {
		entry := node
		if entry == "" {
			entry = f.NodeNames()[0]
		}
		p, err := framework.ServicePort(svc, "http")
		Expect(err).NotTo(HaveOccurred())
		ip, err := f.NodeIP(entry)
		Expect(err).NotTo(HaveOccurred())
		out = append(out, source{f.FromOutside(), serviceURL(ip, p.NodePort, "hostname")})
	}
	return out
}

// clientNode is the node of the balancing client (fx.client), whose
// proxier balances the single-client specs' connections.
func (fx *lbFixture) clientNode() string { return fx.client.Spec.NodeName }

// nodeMode is the mode node was made to run.
func nodeMode(node string) string {
	m, err := f.NodeMode(node)
	Expect(err).NotTo(HaveOccurred())
	return m
}

// onlyIn chooses the balancing client for a spec that judges modes: the
// first client pod on a node running one of them, so that on a mixed
// cluster each mode is judged on a node of its own. It skips the spec,
// saying why, where no node runs them.
func (fx *lbFixture) onlyIn(why string, modes ...string) {
	for _, c := range fx.clients {
		if slices.Contains(modes, nodeMode(c.Spec.NodeName)) {
			fx.client = c
			return
		}
	}
	Skip(fmt.Sprintf("no client on a node of mode %s (nodes: %v): %s", strings.Join(modes, " or "), f.NodeModeList(), why))
}

// spreadOverNodes places the client pods evenly over the nodes, so every
// node (every mode of a mixed cluster) has its clients.
func spreadOverNodes(d *appsv1.Deployment) {
	patientProbe(d)
	d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: d.Spec.Selector.MatchLabels},
	}}
}

var _ = Describe("Load balancing", Label("scheduler"), Ordered, ContinueOnFailure, func() {
	fx := &lbFixture{}

	BeforeAll(func(ctx SpecContext) {
		var err error
		fx.ns, err = f.CreateNamespace(ctx, "lb")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(f.DeleteNamespace(ctx, fx.ns)).To(Succeed()) })
		for _, b := range []framework.Backends{
			{Namespace: fx.ns, Name: "backend", Labels: map[string]string{"app": "lb"}, Replicas: lbBackends, Tune: patientProbe},
			{Namespace: fx.ns, Name: "client", Labels: map[string]string{"app": "lbclient"}, Replicas: lbClients, Tune: spreadOverNodes},
		} {
			Expect(f.DeployNetserver(ctx, b)).To(Succeed())
		}
		sel := map[string]string{"app": "lb"}
		fx.spread = mustCreate(ctx, framework.NetserverService(fx.ns, "spread", corev1.ServiceTypeNodePort, sel))
		sticky := framework.NetserverService(fx.ns, "sticky", corev1.ServiceTypeNodePort, sel)
		sticky.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		fx.sticky = mustCreate(ctx, sticky)
		expiring := framework.NetserverService(fx.ns, "expiring", corev1.ServiceTypeClusterIP, sel)
		expiring.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		expiring.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](2)}}
		fx.expiring = mustCreate(ctx, expiring)

		pods, err := f.WaitPodsReady(ctx, fx.ns, "app=lb", lbBackends, podsReady)
		Expect(err).NotTo(HaveOccurred())
		for _, p := range pods {
			fx.backends = append(fx.backends, p.Name)
		}
		sort.Strings(fx.backends)
		fx.clients, err = f.WaitPodsReady(ctx, fx.ns, "app=lbclient", lbClients, podsReady)
		Expect(err).NotTo(HaveOccurred())
		fx.client = fx.clients[0]
		for _, s := range []string{"spread", "sticky", "expiring"} {
			_, err = f.WaitEndpoints(ctx, fx.ns, s, lbBackends, podsReady)
			Expect(err).NotTo(HaveOccurred())
		}
		// Every node programmed: each source reaches every backend. In
		// batches: one exec into a busy kernel-VM node can take seconds.
		for _, src := range fx.sources(fx.spread) {
			Expect(framework.Poll(ctx, src.Description+" reaching every backend of spread", 2*time.Minute, time.Second, func(ctx context.Context) (bool, string) {
				b, err := f.Spread(ctx, src.Source, src.url, 20)
				if err != nil {
					return false, err.Error()
				}
				names, _ := batch.CountsOf(b.Counts(), fx.backends)
				return len(b.Counts()) == len(fx.backends) && len(names) == len(fx.backends), fmt.Sprintf("answers %v, failures %v", b.Counts(), b.Failures())
			})).To(Succeed())
		}
	}, NodeTimeout(lbSetup))

	It(fmt.Sprintf("spreads new connections evenly over %d endpoints (iptables, nftables; an IPVS node's rotation is judged by the IPVS specs): chi-square at p = %g over each such client node's requests, sized to catch a backend at twice its share with probability > %g", lbBackends, lbAlpha, lbPower), Label("tcp"), func(ctx SpecContext) {
		random := []string{clusters.ModeIPTables, clusters.ModeNFTables}
		fx.onlyIn("IPVS balances by its scheduler, judged by the IPVS specs", random...)
		// One client per node that picks at random, each judged at
		// alpha/nodes (Bonferroni), so the spec's false failure rate stays
		// below alpha.
		var srcs []framework.Source
		seen := map[string]bool{}
		for _, c := range fx.clients {
			if !seen[c.Spec.NodeName] && slices.Contains(random, nodeMode(c.Spec.NodeName)) {
				seen[c.Spec.NodeName] = true
				srcs = append(srcs, f.FromPod(c))
			}
		}
		alpha := lbAlpha / float64(len(srcs))
		n := stats.SampleSize(lbBackends, alpha, lbPower)
		for _, src := range srcs {
			b, err := f.Spread(ctx, src, serviceURL(fx.spread.Spec.ClusterIP, 80, "hostname"), n)
			Expect(err).NotTo(HaveOccurred())
			counts := fx.judged(b, src.Description)
			v, err := stats.Uniform(counts, alpha)
			Expect(err).NotTo(HaveOccurred())
			fx.recordSpread("spread "+src.Node, fmt.Sprintf("new connections per backend from %s (%d requests; %v)", src.Description, n, v), counts)
			Expect(v.Uneven).To(BeFalse(), "%s: %d requests spread %v over %v: %v", src.Description, n, counts, fx.backends, v)
		}
		// The first spec of the container: its timeout covers BeforeAll's
		// set-up too (2 of its 3 minutes on a loaded mixed cluster).
	}, SpecTimeout(lbSetup+3*time.Minute))

	It("pins each ClientIP-affinity client to one backend while clients spread: every source (client pods, nodes, outside) 10 requests on one backend, and at least 2 backends among the sources (false failure 4 x 4^-9 < 0.001)", Label("tcp"), func(ctx SpecContext) {
		perBackend := map[string]int{}
		var lines []string
		for _, src := range fx.sources(fx.sticky) {
			b, err := f.Spread(ctx, src.Source, src.url, 10)
			Expect(err).NotTo(HaveOccurred())
			fx.judged(b, src.Description)
			Expect(b.Counts()).To(HaveLen(1), "%s: affinity ClientIP, yet answers %v", src.Description, b.Answers())
			perBackend[b.Requests[0].Backend]++
			lines = append(lines, fmt.Sprintf("%s -> %s", src.Description, b.Requests[0].Backend))
		}
		_, n := batch.CountsOf(perBackend, fx.backends)
		fx.recordSpread("affinity sources", "sources pinned per backend (ClientIP affinity): "+strings.Join(lines, "; "), n)
		Expect(len(perBackend)).To(BeNumerically(">=", 2), "every source pinned to one backend: %s", strings.Join(lines, "; "))
	}, SpecTimeout(3*time.Minute))

	It("lets ClientIP affinity expire after timeoutSeconds 2 (iptables, nftables; judged on a node of those modes): pinned within a round of 3 requests, and after 8 rounds 3.5 s apart at least 2 backends (false failure 4^-7 < 0.001)", Label("tcp"), func(ctx SpecContext) {
		fx.onlyIn("IPVS keeps a persistence template while the client's closed connections linger (TIME_WAIT, 2 min), far past a short timeoutSeconds", clusters.ModeIPTables, clusters.ModeNFTables)
		src := f.FromPod(fx.client)
		var rounds []string
		for i := range 8 {
			if i > 0 {
				time.Sleep(3500 * time.Millisecond)
			}
			b, err := f.Spread(ctx, src, serviceURL(fx.expiring.Spec.ClusterIP, 80, "hostname"), 3)
			Expect(err).NotTo(HaveOccurred())
			fx.judged(b, src.Description)
			Expect(b.Counts()).To(HaveLen(1), "round %d: within timeoutSeconds the client moved: %v", i+1, b.Answers())
			rounds = append(rounds, b.Requests[0].Backend)
		}
		counts := map[string]int{}
		for _, r := range rounds {
			counts[r]++
		}
		_, n := batch.CountsOf(counts, fx.backends)
		fx.recordSpread("affinity expiry rounds", "rounds per backend after the affinity expired: "+strings.Join(rounds, ", "), n)
		Expect(len(counts)).To(BeNumerically(">=", 2), "the affinity never expired: every round on %v", rounds)
	}, SpecTimeout(2*time.Minute))

	ipvsSchedulerSpecs(fx)
})

// judged fails the spec on failed requests or answers from a pod that is
// no backend, and returns the counts per backend (fixture order).
func (fx *lbFixture) judged(b batch.Batch, from string) []int {
	Expect(b.Failures()).To(BeEmpty(), "%s: failed requests %v", from, b.Failures())
	names, n := batch.CountsOf(b.Counts(), fx.backends)
	Expect(names).To(HaveLen(len(fx.backends)), "%s: answered by pods that are no backend: %v", from, names[len(fx.backends):])
	return n
}

// recordSpread records counts per backend (x: the backend's place in the
// fixture's sorted list) as a figure.
func (fx *lbFixture) recordSpread(name, title string, counts []int) {
	pts := make([]entry.Point, len(counts))
	for i, c := range counts {
		pts[i] = entry.Point{X: float64(i + 1), Y: float64(c)}
	}
	f.RecordFigure(entry.Figure{Name: name, Title: title, Unit: "count", XUnit: "backend", Points: pts})
}

func mustCreate(ctx SpecContext, svc *corev1.Service) *corev1.Service {
	out, err := f.CreateService(ctx, svc)
	Expect(err).NotTo(HaveOccurred())
	return out
}

// serviceURL is the netserver's path at ip:port.
func serviceURL(ip string, port int32, path string) string {
	return "http://" + framework.HostPort(ip, port) + "/" + path
}

// patientProbe gives the readiness probe 5 s to answer: with the default
// 1 s, pods on kernel-VM nodes of a busy machine flapped out of their
// Services mid-spec, which changed the very distribution being judged.
func patientProbe(d *appsv1.Deployment) {
	d.Spec.Template.Spec.Containers[0].ReadinessProbe.TimeoutSeconds = 5
}
