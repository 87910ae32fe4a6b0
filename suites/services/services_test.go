//go:build e2e

package services

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// Deadlines: a Service change must reach every node's rules well within
// these; they bound a broken proxier, not a slow one.
const (
	podsReady   = 2 * time.Minute
	reachable   = 30 * time.Second
	probeWindow = 2 * time.Second
)

// One namespace with a netserver backend and a client pod on every node,
// and a single backend pinned to the first node: the shared fixture of the
// ClusterIP and NodePort specs (pods take seconds to start; specs do not
// need their own).
var _ = Describe("Services with backends", Ordered, ContinueOnFailure, func() {
	var (
		ns          string
		clients     []corev1.Pod
		backends    []string // pod names: the netserver answers its hostname
		backendPods []corev1.Pod
		pinned      string // the one backend of the "pinned" Service
		clusterIP   *corev1.Service
		nodePort    *corev1.Service
		pinnedNP    *corev1.Service
		pinnedNode  string
		remoteNodes []string
	)

	BeforeAll(func(ctx SpecContext) {
		var err error
		ns, err = f.CreateNamespace(ctx, "svc")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(f.DeleteNamespace(ctx, ns)).To(Succeed()) })

		n := int32(f.Nodes)
		nodes := f.NodeNames()
		pinnedNode, remoteNodes = nodes[0], nodes[1:]
		for _, b := range []framework.Backends{
			{Namespace: ns, Name: "backend", Labels: map[string]string{"app": "backend"}, Replicas: n, OnePerNode: true},
			{Namespace: ns, Name: "client", Labels: map[string]string{"app": "client"}, Replicas: n, OnePerNode: true},
			{Namespace: ns, Name: "pinned", Labels: map[string]string{"app": "pinned"}, Replicas: 1, NodeName: pinnedNode},
		} {
			Expect(f.DeployNetserver(ctx, b)).To(Succeed())
		}
		clusterIP, err = f.CreateService(ctx, framework.NetserverService(ns, "clusterip", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}))
		Expect(err).NotTo(HaveOccurred())
		nodePort, err = f.CreateService(ctx, framework.NetserverService(ns, "nodeport", corev1.ServiceTypeNodePort, map[string]string{"app": "backend"}))
		Expect(err).NotTo(HaveOccurred())
		pinnedNP, err = f.CreateService(ctx, framework.NetserverService(ns, "pinned", corev1.ServiceTypeNodePort, map[string]string{"app": "pinned"}))
		Expect(err).NotTo(HaveOccurred())

		pods, err := f.WaitPodsReady(ctx, ns, "app=backend", int(n), podsReady)
		Expect(err).NotTo(HaveOccurred())
		backendPods = pods
		for _, p := range pods {
			backends = append(backends, p.Name)
		}
		clients, err = f.WaitPodsReady(ctx, ns, "app=client", int(n), podsReady)
		Expect(err).NotTo(HaveOccurred())
		onePinned, err := f.WaitPodsReady(ctx, ns, "app=pinned", 1, podsReady)
		Expect(err).NotTo(HaveOccurred())
		pinned = onePinned[0].Name
		for _, s := range []string{"clusterip", "nodeport"} {
			_, err = f.WaitEndpoints(ctx, ns, s, int(n), podsReady)
			Expect(err).NotTo(HaveOccurred())
		}
		_, err = f.WaitEndpoints(ctx, ns, "pinned", 1, podsReady)
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(4*time.Minute))

	It("reaches every backend over ClusterIP TCP from a pod on every node", Label("feature:clusterip", "tcp"), func(ctx SpecContext) {
		port, err := framework.ServicePort(clusterIP, "http")
		Expect(err).NotTo(HaveOccurred())
		url := fmt.Sprintf("http://%s/hostname", framework.HostPort(clusterIP.Spec.ClusterIP, port.Port))
		for _, c := range clients {
			_, err := f.Reach(ctx, f.FromPod(c), framework.HTTP, url, ns+"/clusterip", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
		}
	}, SpecTimeout(3*time.Minute))

	It("reaches every backend over ClusterIP UDP from a pod on every node", Label("feature:clusterip", "udp"), func(ctx SpecContext) {
		port, err := framework.ServicePort(clusterIP, "udp")
		Expect(err).NotTo(HaveOccurred())
		target := framework.HostPort(clusterIP.Spec.ClusterIP, port.Port)
		for _, c := range clients {
			_, err := f.Reach(ctx, f.FromPod(c), framework.UDP, target, ns+"/clusterip", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
		}
	}, SpecTimeout(3*time.Minute))

	It("reaches every backend through the NodePort of every node, from a pod and from another node", Label("feature:nodeport", "tcp"), func(ctx SpecContext) {
		port, err := framework.ServicePort(nodePort, "http")
		Expect(err).NotTo(HaveOccurred())
		Expect(port.NodePort).NotTo(BeZero(), "service %s/nodeport has no node port", ns)
		nodes := f.NodeNames()
		for i, node := range nodes {
			ip, err := f.NodeIP(node)
			Expect(err).NotTo(HaveOccurred())
			url := fmt.Sprintf("http://%s/hostname", framework.HostPort(ip, port.NodePort))
			_, err = f.Reach(ctx, f.FromPod(clients[0]), framework.HTTP, url, ns+"/nodeport", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
			// From outside the node: through its IP from the next node.
			other := nodes[(i+1)%len(nodes)]
			_, err = f.Reach(ctx, f.FromNode(other), framework.HTTP, url, ns+"/nodeport", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
		}
	}, SpecTimeout(4*time.Minute))

	It("forwards a NodePort on a node without an endpoint to the endpoint on another node", Label("feature:nodeport", "tcp", "udp"), func(ctx SpecContext) {
		http, err := framework.ServicePort(pinnedNP, "http")
		Expect(err).NotTo(HaveOccurred())
		udp, err := framework.ServicePort(pinnedNP, "udp")
		Expect(err).NotTo(HaveOccurred())
		for _, node := range remoteNodes {
			ip, err := f.NodeIP(node)
			Expect(err).NotTo(HaveOccurred())
			url := fmt.Sprintf("http://%s/hostname", framework.HostPort(ip, http.NodePort))
			_, err = f.Reach(ctx, f.FromNode(pinnedNode), framework.HTTP, url, ns+"/pinned", []string{pinned}, reachable)
			Expect(err).NotTo(HaveOccurred(), "externalTrafficPolicy Cluster: %s has no endpoint and must forward", node)
			_, err = f.Reach(ctx, f.FromPod(clients[0]), framework.UDP, framework.HostPort(ip, udp.NodePort), ns+"/pinned", []string{pinned}, reachable)
			Expect(err).NotTo(HaveOccurred(), "externalTrafficPolicy Cluster: %s has no endpoint and must forward", node)
		}
	}, SpecTimeout(3*time.Minute))

	It("refuses at once on a Service with no endpoints, over TCP and UDP", Label("feature:no-endpoints", "tcp", "udp"), func(ctx SpecContext) {
		svc, err := f.CreateService(ctx, framework.NetserverService(ns, "empty", corev1.ServiceTypeClusterIP, map[string]string{"app": "nothing"}))
		Expect(err).NotTo(HaveOccurred())
		var samples []float64
		for _, c := range clients {
			for _, pn := range []struct{ port, kind string }{{"http", framework.TCP}, {"udp", framework.UDP}} {
				port, err := framework.ServicePort(svc, pn.port)
				Expect(err).NotTo(HaveOccurred())
				target := framework.HostPort(svc.Spec.ClusterIP, port.Port)
				ms, err := refusesAtOnce(ctx, f.FromPod(c), pn.kind, target, ns+"/empty")
				Expect(err).NotTo(HaveOccurred())
				samples = append(samples, ms...)
			}
		}
		f.RecordFigure(entry.Figure{Name: "no-endpoints-refusal", Title: "Time to refusal, Service without endpoints (client-side)", Unit: "ms", Values: samples})
	}, SpecTimeout(3*time.Minute))

	It("reflects endpoints added and removed, recording the propagation time", Label("feature:endpoints", "tcp"), func(ctx SpecContext) {
		Expect(len(backendPods)).To(BeNumerically(">=", 2))
		svc := framework.NetserverService(ns, "manual", corev1.ServiceTypeClusterIP, nil)
		svc, err := f.CreateService(ctx, svc)
		Expect(err).NotTo(HaveOccurred())
		port, err := framework.ServicePort(svc, "http")
		Expect(err).NotTo(HaveOccurred())
		url := fmt.Sprintf("http://%s/hostname", framework.HostPort(svc.Spec.ClusterIP, port.Port))
		src := f.FromPod(clients[0])
		// Programmed with no endpoints first, so the clock below measures
		// an endpoint change, not the Service's first sync.
		_, err = refusesAtOnce(ctx, src, framework.TCP, framework.HostPort(svc.Spec.ClusterIP, port.Port), ns+"/manual")
		Expect(err).NotTo(HaveOccurred())

		a, b := backendPods[0], backendPods[1]
		var added, removed []float64
		steps := []struct {
			what      string
			endpoints []corev1.Pod
			// until says when a probe sees the change.
			until func(framework.Result) bool
			into  *[]float64
		}{
			{"add " + a.Name, []corev1.Pod{a}, answeredBy(a.Name), &added},
			{"add " + b.Name, []corev1.Pod{a, b}, answeredBy(b.Name), &added},
			{"remove " + a.Name, []corev1.Pod{b}, nil, &removed},
			{"remove " + b.Name, nil, refused, &removed},
		}
		for i, step := range steps {
			written, err := f.WriteEndpointSlice(ctx, ns, "manual", step.endpoints, i == 0)
			Expect(err).NotTo(HaveOccurred(), step.what)
			var seen time.Time
			if step.until != nil {
				seen, err = f.FirstProbe(ctx, src, framework.HTTP, url, ns+"/manual", step.what, step.until, reachable)
			} else {
				// A removal is seen when the removed backend stops
				// answering: the first of 10 answers in a row all from b.
				seen, err = f.FirstOfRun(ctx, src, framework.HTTP, url, ns+"/manual", step.what, answeredBy(b.Name), 10, reachable)
			}
			Expect(err).NotTo(HaveOccurred(), step.what)
			*step.into = append(*step.into, float64(seen.Sub(written).Microseconds())/1000)
		}
		f.RecordFigure(entry.Figure{Name: "endpoint-add-propagation", Title: "Endpoint added: API write -> first probe answered by it", Unit: "ms", Values: added})
		f.RecordFigure(entry.Figure{Name: "endpoint-remove-propagation", Title: "Endpoint removed: API write -> first probe that no longer reaches it", Unit: "ms", Values: removed})
	}, SpecTimeout(3*time.Minute))
})

func answeredBy(name string) func(framework.Result) bool {
	return func(r framework.Result) bool { return r.Backend() == name }
}

func refused(r framework.Result) bool { return !r.OK && r.Class == "refused" }

// refusesAtOnce waits for target to be refused (the proxier may not have
// programmed the Service yet), then probes 3 more times: each must be
// refused within refusalBound, not time out. It returns the client-side
// times to refusal in ms.
//
// The samples are a second apart because the node's kernel rate-limits the
// ICMP errors a reject sends to one destination (net.ipv4.icmp_ratelimit:
// a burst of 6, then one a second): back-to-back probes would measure the
// rate limiter (a dropped UDP answer, a TCP SYN refused only on its retry
// after 1 s), with upstream kube-proxy as with ours.
func refusesAtOnce(ctx SpecContext, src framework.Source, kind, target, service string) ([]float64, error) {
	const (
		refusalBound = time.Second
		spacing      = 1100 * time.Millisecond
	)
	if _, err := f.FirstProbe(ctx, src, kind, target, service, "refusal", refused, reachable); err != nil {
		return nil, err
	}
	var ms []float64
	for i := 0; i < 3; i++ {
		select {
		case <-ctx.Done():
			return ms, ctx.Err()
		case <-time.After(spacing):
		}
		r := f.Probe(ctx, src, kind, target, 3*time.Second)
		if !refused(r) || r.Elapsed > refusalBound {
			f.RecordProbe(src, kind, target, service, fmt.Sprintf("refused within %s", refusalBound), r.String(), true)
			return ms, fmt.Errorf("%s -> %s %s (%s, no endpoints): want refused within %s, got %v", src.Description, kind, target, service, refusalBound, r)
		}
		ms = append(ms, float64(r.Elapsed.Microseconds())/1000)
	}
	return ms, nil
}
