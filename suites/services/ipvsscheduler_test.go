//go:build e2e

package services

import (
	"context"
	"fmt"
	"net"
	"slices"
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

// Held connections for the least-connection schedulers: held open to one
// backend while every other backend holds none.
const (
	heldConns = 10
	heldFor   = 3 * time.Minute // at most: the spec stops it once done
	heldNew   = 60              // new connections that must all avoid the busy backend
)

// mh (Maglev hashing) is judged by its promise: when a backend goes, the
// clients of the others stay. Both proxiers set mh-port, so a client is a
// source address and port: mhSources fixed source ports connect, one
// backend is removed, and the same ports connect again. Maglev moves a few
// of the survivors' keys too: with the Debian kernel's lookup table (4,093
// slots, CONFIG_IP_VS_MH_TAB_INDEX=12) a simulation of 300 random tables
// moved 0.45% of them on average, 4.4% at most; at most mhMovedMax of the
// ~48 survivors moving then fails falsely with probability 1.4e-4, while a
// scheduler without that promise (rr, sh) moves about two thirds. The
// clients of the backend that left must not fail: the proxier drains it
// at weight 0 first, and mh keeps its slots; ours sets mh-fallback so
// they go on to another backend. Upstream kube-proxy sets only mh-port,
// and the kernel's mh then finds no destination for them (ip_vs_mh_get
// returns none for a weight-0 server): refused until it is deleted.
const (
	mhSources    = 64
	mhSourcePort = 20000 // below the ephemeral range
	mhMovedMax   = 5
	// mhSettle outlasts IPVS's and conntrack's CLOSE state (10 s) of a
	// reset connection: no connection entry of the first round may
	// decide the second.
	mhSettle = 15 * time.Second
)

// ipvsSchedulerSpecs are the IPVS scheduler specs, in the load-balancing
// fixture. The cluster-wide scheduler is the proxier's configuration
// (ipvs.scheduler): a spec restarts the proxier of the node that balances
// its clients' connections (the first client pod's on an IPVS node: on a
// mixed cluster, the IPVS node's) with it, every client runs on or enters
// through that node, and the last restores rr.
func ipvsSchedulerSpecs(fx *lbFixture) {
	ipvsOnly := func() { fx.onlyIn("IPVS schedulers apply to IPVS nodes only", clusters.ModeIPVS) }
	changed := false
	AfterAll(func(ctx SpecContext) {
		if changed {
			ipvsOnly() // the balancing client of the specs that changed it
			useScheduler(ctx, fx, "rr")
		}
	}, NodeTimeout(3*time.Minute))

	It("rr: rotates new connections in exact order (request i answered by the backend of request i-4, 40 requests)", Label("tcp"), func(ctx SpecContext) {
		ipvsOnly()
		exactRotation(ctx, fx, fx.spread, 40, "rr")
	}, SpecTimeout(2*time.Minute))

	It("honours the ipvs.proxyproof.dev/scheduler annotation over the cluster's rr (extension): dh sends 20 new connections to one backend", Label("tcp", "extension"), func(ctx SpecContext) {
		ipvsOnly()
		ext, ok := clusters.As[clusters.ProxierExtensions](f.Cluster)
		if !ok || !slices.Contains(ext.ProxierExtensions(), clusters.ExtensionIPVSSchedulerAnnotation) {
			Skip("the proxier does not declare the extension " + clusters.ExtensionIPVSSchedulerAnnotation)
		}
		svc := framework.NetserverService(fx.ns, "annotated", corev1.ServiceTypeClusterIP, map[string]string{"app": "lb"})
		svc.Annotations = map[string]string{clusters.ExtensionIPVSSchedulerAnnotation: "dh"}
		svc = mustCreate(ctx, svc)
		src := f.FromPod(fx.client)
		target := serviceURL(svc.Spec.ClusterIP, 80, "hostname")
		Expect(framework.Poll(ctx, "the annotated Service answers", podsReady, 200*time.Millisecond, func(ctx context.Context) (bool, string) {
			r := f.Probe(ctx, src, framework.HTTP, target, 2*time.Second)
			return r.OK, r.String()
		})).To(Succeed())
		b, err := f.Spread(ctx, src, target, 20)
		Expect(err).NotTo(HaveOccurred())
		fx.recordSpread("annotation dh", "new connections per backend, Service annotated dh on a cluster scheduling rr", fx.judged(b, src.Description))
		Expect(b.Counts()).To(HaveLen(1), "annotated dh, yet the answers rotate as rr does: %v", b.Answers())
	}, SpecTimeout(2*time.Minute))

	It("wrr: with the equal weights the proxier sets (1 per ready endpoint) rotates exactly like rr (40 requests)", Label("tcp"), func(ctx SpecContext) {
		ipvsOnly()
		changed = true
		useScheduler(ctx, fx, "wrr")
		exactRotation(ctx, fx, fx.spread, 40, "wrr")
	}, SpecTimeout(3*time.Minute))

	for _, sched := range []string{"lc", "wlc", "sed", "nq"} {
		It(fmt.Sprintf("%s: sends new connections away from a backend holding %d open ones (none of %d new connections reaches it)", sched, heldConns, heldNew), Label("tcp"), func(ctx SpecContext) {
			ipvsOnly()
			changed = true
			useScheduler(ctx, fx, sched)
			leastConnection(ctx, fx, sched)
		}, SpecTimeout(4*time.Minute))
	}

	It("sh: keeps each source on one backend (every source 8 requests) and spreads sources (at least 2 backends among them)", Label("tcp"), func(ctx SpecContext) {
		ipvsOnly()
		changed = true
		useScheduler(ctx, fx, "sh")
		perBackend := map[string]int{}
		for _, src := range fx.sourcesOn(fx.spread, fx.clientNode()) {
			b, err := f.Spread(ctx, src.Source, src.url, 8)
			Expect(err).NotTo(HaveOccurred())
			fx.judged(b, src.Description)
			Expect(b.Counts()).To(HaveLen(1), "%s: sh moved the source between backends: %v", src.Description, b.Answers())
			perBackend[b.Requests[0].Backend]++
		}
		_, n := batch.CountsOf(perBackend, fx.backends)
		fx.recordSpread("sh sources", "sources per backend under sh", n)
		Expect(len(perBackend)).To(BeNumerically(">=", 2), "every source hashed to one backend: %v", perBackend)
	}, SpecTimeout(3*time.Minute))

	It(fmt.Sprintf("mh: keeps the clients of the surviving backends where they were when one backend is removed (%d fixed source ports connect before and after; at most %d of the survivors' move)", mhSources, mhMovedMax), Label("tcp"), func(ctx SpecContext) {
		ipvsOnly()
		changed = true
		useScheduler(ctx, fx, "mh")
		consistentHashing(ctx, fx)
	}, SpecTimeout(4*time.Minute))

	It("dh: sends every connection to the Service's address to one backend, whatever the source (every source on the balancing node 8 requests)", Label("tcp"), func(ctx SpecContext) {
		ipvsOnly()
		changed = true
		useScheduler(ctx, fx, "dh")
		counts := map[string]int{}
		var seen []string
		for _, src := range fx.sourcesOn(fx.spread, fx.clientNode()) {
			if src.Node == "" {
				continue // the outside client's NodePort is another destination
			}
			b, err := f.Spread(ctx, src.Source, src.url, 8)
			Expect(err).NotTo(HaveOccurred())
			fx.judged(b, src.Description)
			for k, v := range b.Counts() {
				counts[k] += v
			}
			seen = append(seen, fmt.Sprintf("%s: %v", src.Description, b.Counts()))
		}
		_, n := batch.CountsOf(counts, fx.backends)
		fx.recordSpread("dh connections", "new connections per backend under dh, every source on "+fx.clientNode(), n)
		Expect(counts).To(HaveLen(1), "dh spread one destination over several backends: %s", strings.Join(seen, "; "))
	}, SpecTimeout(3*time.Minute))
}

// consistentHashing connects mhSources fixed source ports to a Service
// of every backend, removes the backend with the most of them, and
// connects the same ports again: the survivors' clients must stay.
func consistentHashing(ctx SpecContext, fx *lbFixture) {
	const name = "maglev"
	svc := framework.NetserverService(fx.ns, name, corev1.ServiceTypeClusterIP, map[string]string{"app": "lb"})
	svc.Spec.Selector = nil // its endpoints are written by hand: all, then all but one
	svc = mustCreate(ctx, svc)
	pods, err := f.WaitPodsReady(ctx, fx.ns, "app=lb", lbBackends, podsReady)
	Expect(err).NotTo(HaveOccurred())
	_, err = f.WriteEndpointSlice(ctx, fx.ns, name, pods, true)
	Expect(err).NotTo(HaveOccurred())
	src := f.FromPod(fx.client)
	target := serviceURL(svc.Spec.ClusterIP, 80, "hostname")
	Expect(framework.Poll(ctx, name+" answers", podsReady, 200*time.Millisecond, func(ctx context.Context) (bool, string) {
		r := f.Probe(ctx, src, framework.HTTP, target, 2*time.Second)
		return r.OK, r.String()
	})).To(Succeed())

	before, err := f.SpreadFrom(ctx, src, target, mhSources, mhSourcePort)
	Expect(err).NotTo(HaveOccurred())
	Expect(before.Failures()).To(BeEmpty(), "first round: %v", before.Answers())
	fx.recordSpread("mh before", fmt.Sprintf("mh: %d source ports per backend, every backend in the Service", mhSources), fx.judged(before, src.Description))
	counts := before.Counts()
	Expect(len(counts)).To(BeNumerically(">=", 2), "mh put all %d source ports on one backend: %v", mhSources, counts)
	removed := fx.backends[0]
	for _, b := range fx.backends {
		if counts[b] > counts[removed] {
			removed = b
		}
	}
	var kept []corev1.Pod
	var removedIP string
	for _, p := range pods {
		if p.Name == removed {
			removedIP = p.Status.PodIP
			continue
		}
		kept = append(kept, p)
	}
	settled := time.Now().Add(mhSettle)
	_, err = f.WriteEndpointSlice(ctx, fx.ns, name, kept, false)
	Expect(err).NotTo(HaveOccurred())
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	Expect(framework.Poll(ctx, removed+" ("+removedIP+") out of "+vip+" on "+fx.clientNode(), podsReady, 500*time.Millisecond, func(ctx context.Context) (bool, string) {
		out, err := f.Cluster.ExecOnNode(ctx, fx.clientNode(), "ipvsadm", "-Ln", "-t", vip)
		if err != nil {
			return false, fmt.Sprintf("%v %s", err, out)
		}
		return !servesRealServer(string(out), removedIP), string(out)
	})).To(Succeed())
	time.Sleep(time.Until(settled))

	after, err := f.SpreadFrom(ctx, src, target, mhSources, mhSourcePort)
	Expect(err).NotTo(HaveOccurred())
	Expect(after.Failures()).To(BeEmpty(), "second round, %s removed: %v", removed, after.Answers())
	fx.recordSpread("mh after", fmt.Sprintf("mh: the same %d source ports per backend, %s removed", mhSources, removed), fx.judged(after, src.Description))
	var moved []string
	survivors := 0
	for i, q := range before.Requests {
		a := after.Requests[i].Backend
		Expect(a).NotTo(Equal(removed), "source port %d answered by %s after it left the Service", mhSourcePort+i, removed)
		if q.Backend != removed {
			survivors++
			if a != q.Backend {
				moved = append(moved, fmt.Sprintf("port %d: %s -> %s", mhSourcePort+i, q.Backend, a))
			}
		}
	}
	f.RecordFigure(entry.Figure{Name: "mh survivors moved", Title: fmt.Sprintf("mh: source ports of the surviving backends that moved when %s left (of %d)", removed, survivors), Unit: "source ports", Values: []float64{float64(len(moved))}})
	Expect(len(moved)).To(BeNumerically("<=", mhMovedMax), "%d of the %d source ports of surviving backends moved when %s left (at most %d may): %s",
		len(moved), survivors, removed, mhMovedMax, strings.Join(moved, ", "))
}

// virtualServerScheduler is the scheduler /proc/net/ip_vs gives TCP
// virtual server vs ("IP:PORT"), read by census.ParseIPVSProc, or "" when
// it has none.
func virtualServerScheduler(proc, vs string) (string, error) {
	vss, err := census.ParseIPVSProc(proc)
	if err != nil {
		return "", err
	}
	for _, v := range vss {
		if v.Proto == "TCP" && v.Addr == vs {
			return v.Scheduler, nil
		}
	}
	return "", nil
}

// servesRealServer reports whether an `ipvsadm -Ln` listing has real
// server ip with a weight above 0 (a weight of 0 is one draining).
func servesRealServer(listing, ip string) bool {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "->" && strings.HasPrefix(f[1], ip+":") {
			return f[3] != "0"
		}
	}
	return false
}

// exactRotation checks that n new connections from one client rotate
// over svc's backends in a fixed order.
func exactRotation(ctx SpecContext, fx *lbFixture, svc *corev1.Service, n int, sched string) {
	src := f.FromPod(fx.client)
	b, err := f.Spread(ctx, src, serviceURL(svc.Spec.ClusterIP, 80, "hostname"), n)
	Expect(err).NotTo(HaveOccurred())
	fx.recordSpread(sched+" rotation", sched+": new connections per backend", fx.judged(b, src.Description))
	a := b.Answers()
	k := len(fx.backends)
	first := slices.Clone(a[:k])
	slices.Sort(first)
	Expect(slices.Compact(first)).To(HaveLen(k), "the first %d answers are not %d different backends: %v", k, k, a)
	for i := k; i < len(a); i++ {
		Expect(a[i]).To(Equal(a[i-k]), "request %d answered by %s, request %d by %s: not a rotation (%v)", i+1, a[i], i+1-k, a[i-k], a)
	}
}

// useScheduler restarts the balancing node's proxier with IPVS scheduler
// sched and records how long it took to serve again.
func useScheduler(ctx context.Context, fx *lbFixture, sched string) {
	r, ok := clusters.As[clusters.ProxierRestarter](f.Cluster)
	if !ok {
		Skip(fmt.Sprintf("provider %s cannot restart a node's proxier", f.Cluster.Provider()))
	}
	node := fx.clientNode()
	began := time.Now()
	restarted, err := r.RestartProxier(ctx, node, clusters.ProxierChange{Scheduler: sched})
	Expect(err).NotTo(HaveOccurred(), "restart %s's proxier with scheduler %s", node, sched)
	// /healthz answers 200 before the first sync (as kube-proxy's does),
	// and the virtual servers keep the previous scheduler until then: a
	// dh spec after a validate switch sent its first client's 8
	// connections to 3 backends under the previous spec's mh.
	vs := framework.HostPort(fx.spread.Spec.ClusterIP, 80)
	Expect(framework.Poll(ctx, fmt.Sprintf("virtual server %s on %s with scheduler %s", vs, node, sched), reachable, 500*time.Millisecond, func(ctx context.Context) (bool, string) {
		proc, err := f.Cluster.ExecOnNode(ctx, node, "cat", census.IPVSProcFile)
		if err != nil {
			return false, err.Error()
		}
		got, err := virtualServerScheduler(string(proc), vs)
		if err != nil {
			return false, err.Error()
		}
		return got == sched, fmt.Sprintf("scheduler %q", got)
	})).To(Succeed())
	// The restart is this spec's set-up, judged by the churn restart spec:
	// wait until new connections stop failing, and record how long after
	// /healthz said serving that took.
	src := f.FromPod(fx.client)
	Expect(framework.Poll(ctx, "new connections without failures after the restart", podsReady, time.Second, func(ctx context.Context) (bool, string) {
		b, err := f.Spread(ctx, src, serviceURL(fx.spread.Spec.ClusterIP, 80, "hostname"), 2*len(fx.backends))
		if err != nil {
			return false, err.Error()
		}
		return len(b.Failures()) == 0, fmt.Sprintf("failures %v", b.Failures())
	})).To(Succeed())
	f.RecordFigure(entry.Figure{Name: "proxier restart to serving " + sched, Title: "proxier of " + node + " restarted with ipvs.scheduler " + sched + ": restart -> /healthz 200, -> new connections without failures", Unit: "ms",
		Values: []float64{float64(restarted.Served.Sub(began).Milliseconds()), float64(time.Since(began).Milliseconds())}})
}

// leastConnection holds heldConns connections open to one backend (the
// Service selects only it while they open), then widens the Service to
// every backend and checks that no new connection goes to the busy one.
func leastConnection(ctx SpecContext, fx *lbFixture, sched string) {
	name := "held-" + sched
	busy := fx.backends[0]
	svc := framework.NetserverService(fx.ns, name, corev1.ServiceTypeClusterIP, map[string]string{"app": "lb"})
	svc.Spec.Selector = nil // its endpoints are written by hand: first busy alone, then all
	svc = mustCreate(ctx, svc)
	pods, err := f.WaitPodsReady(ctx, fx.ns, "app=lb", lbBackends, podsReady)
	Expect(err).NotTo(HaveOccurred())
	var busyPod []corev1.Pod
	for _, p := range pods {
		if p.Name == busy {
			busyPod = append(busyPod, p)
		}
	}
	_, err = f.WriteEndpointSlice(ctx, fx.ns, name, busyPod, true)
	Expect(err).NotTo(HaveOccurred())
	src := f.FromPod(fx.client)
	target := serviceURL(svc.Spec.ClusterIP, 80, "hostname")
	Expect(framework.Poll(ctx, name+" answers from "+busy, podsReady, 200*time.Millisecond, func(ctx context.Context) (bool, string) {
		r := f.Probe(ctx, src, framework.HTTP, target, 2*time.Second)
		return r.Backend() == busy, r.String()
	})).To(Succeed())

	var held batch.Batch
	var heldErr error
	done := make(chan struct{})
	files := framework.NewHoldFiles(name)
	go func() {
		defer GinkgoRecover()
		defer close(done)
		held, heldErr = f.Hold(ctx, src, target, heldConns, heldFor, files)
	}()
	DeferCleanup(func(ctx SpecContext) { f.RemoveHoldFiles(ctx, src, files) })
	Expect(f.HoldReady(ctx, src, files.Ready, heldFor)).To(Succeed())
	_, err = f.WriteEndpointSlice(ctx, fx.ns, name, pods, false)
	Expect(err).NotTo(HaveOccurred())
	Expect(framework.Poll(ctx, name+" answers from another backend than "+busy, podsReady, 200*time.Millisecond, func(ctx context.Context) (bool, string) {
		r := f.Probe(ctx, src, framework.HTTP, target, 2*time.Second)
		return r.OK && r.Backend() != busy, r.String()
	})).To(Succeed())
	fresh, err := f.Spread(ctx, src, target, heldNew)
	Expect(err).NotTo(HaveOccurred())
	Expect(f.StopHold(ctx, src, files)).To(Succeed())
	<-done
	Expect(heldErr).NotTo(HaveOccurred())
	Expect(held.Failures()).To(BeEmpty(), "held connections failed: %v", held.Failures())
	Expect(held.Counts()).To(HaveKey(busy))
	Expect(held.Counts()).To(HaveLen(1), "held connections answered by %v, want %s only", held.Counts(), busy)
	last := held.Requests[len(held.Requests)-1]
	Expect(fresh.Time(fresh.Requests[len(fresh.Requests)-1])).To(BeTemporally("<", held.Time(last)),
		"the new connections ended after the held ones closed (after %s)", heldFor)
	counts := fx.judged(fresh, src.Description)
	fx.recordSpread(sched+" new connections", fmt.Sprintf("%s: new connections per backend while %s (backend 1) holds %d open", sched, busy, heldConns), counts)
	Expect(fresh.Counts()).NotTo(HaveKey(busy), "%s sent %d of %d new connections to %s, which holds %d open ones; answers: %s",
		sched, fresh.Counts()[busy], heldNew, busy, heldConns, strings.Join(fresh.Answers(), " "))
}
