//go:build e2e

package services

import (
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// syncPeriod is the proxiers' syncPeriod here (kube-proxy's default; the
// providers keep it): "within one sync" is at most this long.
const syncPeriod = 30 * time.Second

// A steady UDP client (one socket: one source port, so one conntrack
// flow, as a DNS or statsd client) must follow its Service to a new
// endpoint. Its flow stays bound to what the first datagram was
// translated to until the proxier deletes it, as kube-proxy's conntrack
// reconciler does after the sync that programs the change.
var _ = Describe("Conntrack: stale UDP flows", Label("conntrack", "udp"), Ordered, ContinueOnFailure, func() {
	var (
		ns      string
		clients []corev1.Pod
		oldPod  string
		newPod  string
	)

	BeforeAll(func(ctx SpecContext) {
		var err error
		ns, err = f.CreateNamespace(ctx, "ctudp")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(f.DeleteNamespace(ctx, ns)).To(Succeed()) })
		for _, b := range []framework.Backends{
			{Namespace: ns, Name: "old", Labels: map[string]string{"app": "stale", "pick": "old"}, Replicas: 1},
			{Namespace: ns, Name: "new", Labels: map[string]string{"app": "stale", "pick": "new"}, Replicas: 1},
			{Namespace: ns, Name: "client", Labels: map[string]string{"app": "client"}, Replicas: int32(f.Nodes), OnePerNode: true},
		} {
			Expect(f.DeployNetserver(ctx, b)).To(Succeed())
		}
		for _, p := range []struct {
			sel  string
			name *string
		}{{"pick=old", &oldPod}, {"pick=new", &newPod}} {
			pods, err := f.WaitPodsReady(ctx, ns, p.sel, 1, podsReady)
			Expect(err).NotTo(HaveOccurred())
			*p.name = pods[0].Name
		}
		clients, err = f.WaitPodsReady(ctx, ns, "app=client", f.Nodes, podsReady)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(4*time.Minute))

	// follow streams from every client to svc's UDP port, makes change
	// once every stream runs, marks the streams and returns each one's
	// recovery: from the change to the first answer from newPod.
	follow := func(ctx SpecContext, svc *corev1.Service, change func(*corev1.Service), answeredBefore string) []float64 {
		target := framework.HostPort(svc.Spec.ClusterIP, 81)
		if answeredBefore != "" {
			// Every client's node programs the Service first (a kernel-VM
			// node's sync takes seconds): the flow must start on the old
			// endpoint for its move to mean anything.
			for _, c := range clients {
				_, err := f.Reach(ctx, f.FromPod(c), framework.UDP, target, ns+"/"+svc.Name, []string{answeredBefore}, podsReady)
				Expect(err).NotTo(HaveOccurred())
			}
		}
		streams := make([]batch.Batch, len(clients))
		errs := make([]error, len(clients))
		files := make([]framework.HoldFiles, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			files[i] = framework.NewHoldFiles("ctudp")
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				streams[i], errs[i] = f.UDPStream(ctx, f.FromPod(c), framework.Stream{
					Target: target, Rate: 5, For: syncPeriod + 15*time.Second, Files: files[i], Until: newPod, UntilRun: 5})
			}()
		}
		for i, c := range clients {
			Expect(f.HoldReady(ctx, f.FromPod(c), files[i].Ready, reachable)).To(Succeed())
		}
		time.Sleep(2 * time.Second) // a few answers (or refusals) before the change
		_, _, err := f.UpdateService(ctx, ns, svc.Name, change)
		Expect(err).NotTo(HaveOccurred())
		took := make([]time.Duration, len(clients))
		for i, c := range clients {
			took[i], err = f.MarkStream(ctx, f.FromPod(c), files[i])
			Expect(err).NotTo(HaveOccurred())
		}
		wg.Wait()
		var recoveries []float64
		for i, c := range clients {
			f.RemoveHoldFiles(ctx, f.FromPod(c), files[i])
			Expect(errs[i]).NotTo(HaveOccurred())
			if answeredBefore != "" {
				Expect(before(streams[i])).To(HaveKey(answeredBefore), "pod %s on %s: the flow was not answered by %s before the change", c.Name, c.Spec.NodeName, answeredBefore)
			}
			r, err := recovery(streams[i], newPod, took[i])
			Expect(err).NotTo(HaveOccurred(), "pod %s on %s -> %s (%s/%s), one UDP flow from %s", c.Name, c.Spec.NodeName, target, ns, svc.Name, streams[i].Source)
			By(fmt.Sprintf("pod %s on %s: the flow reached %s %.0f ms after the change (%v before it)", c.Name, c.Spec.NodeName, newPod, r, before(streams[i])))
			Expect(time.Duration(r*float64(time.Millisecond))).To(BeNumerically("<=", syncPeriod),
				"pod %s on %s: the UDP flow took longer than one sync period to reach the new endpoint", c.Name, c.Spec.NodeName)
			recoveries = append(recoveries, r)
		}
		return recoveries
	}

	It("moves a steady UDP flow to the new endpoint within one sync period when the Service's only endpoint is replaced", Label("stale-udp"), func(ctx SpecContext) {
		svc, err := f.CreateService(ctx, framework.NetserverService(ns, "replaced", corev1.ServiceTypeClusterIP, map[string]string{"pick": "old"}))
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WaitEndpoints(ctx, ns, svc.Name, 1, podsReady)
		Expect(err).NotTo(HaveOccurred())
		// The old pod keeps running and answering: a flow the proxier did
		// not clear would keep reaching it, which the stream records.
		r := follow(ctx, svc, func(s *corev1.Service) { s.Spec.Selector = map[string]string{"pick": "new"} }, oldPod)
		f.RecordFigure(entry.Figure{Name: "conntrack-stale-udp-replaced", Title: "Steady UDP flow: endpoint replaced, change to first answer from the new endpoint (one value per client node)", Unit: "ms", Values: r})
	}, SpecTimeout(3*time.Minute))

	It("moves a steady UDP flow to the first endpoint within one sync period when a Service without endpoints gets one", Label("stale-udp"), func(ctx SpecContext) {
		svc, err := f.CreateService(ctx, framework.NetserverService(ns, "first", corev1.ServiceTypeClusterIP, map[string]string{"pick": "none"}))
		Expect(err).NotTo(HaveOccurred())
		r := follow(ctx, svc, func(s *corev1.Service) { s.Spec.Selector = map[string]string{"pick": "new"} }, "")
		f.RecordFigure(entry.Figure{Name: "conntrack-stale-udp-first-endpoint", Title: "Steady UDP flow: first endpoint added, change to first answer from it (one value per client node)", Unit: "ms", Values: r})
	}, SpecTimeout(3*time.Minute))
})

// recovery is how long after the caller's change the stream's flow first
// got an answer from backend, in ms: from the mark (the stream's own
// clock) plus the time the mark took to make (the change was made before
// it), an upper bound. It fails when backend never answered after the
// mark, saying what did.
func recovery(b batch.Batch, backend string, markTook time.Duration) (float64, error) {
	if b.MarkAt == nil {
		return 0, fmt.Errorf("the stream ended (%d datagrams) before it saw the change's mark", len(b.Requests))
	}
	after := map[string]int{}
	for _, r := range b.Requests {
		if r.At < *b.MarkAt {
			continue
		}
		if r.OK() && r.Backend == backend {
			return r.At + r.Ms - *b.MarkAt + float64(markTook.Milliseconds()), nil
		}
		if r.OK() {
			after["answered by "+r.Backend]++
		} else {
			after[r.Class]++
		}
	}
	return 0, fmt.Errorf("no answer from %s in the %.0f s after the change; the flow got %v", backend, (b.Requests[len(b.Requests)-1].At-*b.MarkAt)/1000, after)
}

// before says what the stream got before the mark.
func before(b batch.Batch) map[string]int {
	got := map[string]int{}
	for _, r := range b.Requests {
		if b.MarkAt != nil && r.At >= *b.MarkAt {
			break
		}
		if r.OK() {
			got[r.Backend]++
		} else {
			got[r.Class]++
		}
	}
	return got
}
