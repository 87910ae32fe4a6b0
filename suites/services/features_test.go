//go:build e2e

package services

import (
	"fmt"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// ipvs is the mode whose kernel state carries no Service names and
// answers a virtual server without real servers with ICMP unreachable.
const ipvs = "ipvs"

// Negative probes: a dropped packet costs the probe's whole timeout, so
// they wait less than a positive probe, and three in a row say "closed".
const (
	silentProbe = time.Second
	silentRun   = 3
	// restored bounds how long a proxier takes to put hand-deleted rules
	// back: kube-proxy's syncPeriod (30 s, the local provider's default)
	// plus a sync.
	restored = 45 * time.Second
)

// Addresses the outside client is routed to through a node: TEST-NET-3,
// never on any real network.
const (
	externalIP = "203.0.113.10"
	lbIP       = "203.0.113.20"
)

// The second fixture: the Service features beyond plain ClusterIP and
// NodePort. Every node has a netserver "backend" and a "client"; node 0
// has one more, "pinned"; the last node has "alt", whose ports named http
// and udp are 9090/9091 instead of 8080/8081 (a named targetPort resolves
// per pod). Each spec makes its own Services over these pods; the last
// spec deletes node 0's rules, so it runs last.
var _ = Describe("Service features", Ordered, ContinueOnFailure, func() {
	var (
		ns         string
		nodes      []string
		clients    []corev1.Pod // one per node, in node order
		backendOn  map[string]string
		backends   []string
		pinned     corev1.Pod
		alt        string
		pinnedNode string
		otherNode  string
	)

	// create makes a Service over the fixture's pods with the netserver's
	// two ports (80/TCP http, 81/UDP udp), changed by edit.
	create := func(ctx SpecContext, name string, typ corev1.ServiceType, selector map[string]string, edit func(*corev1.Service)) *corev1.Service {
		svc := framework.NetserverService(ns, name, typ, selector)
		if edit != nil {
			edit(svc)
		}
		out, err := f.CreateService(ctx, svc)
		Expect(err).NotTo(HaveOccurred())
		return out
	}
	url := func(ip string, port int32, path string) string {
		return fmt.Sprintf("http://%s/%s", framework.HostPort(ip, port), path)
	}
	nodeIP := func(node string) string {
		ip, err := f.NodeIP(node)
		Expect(err).NotTo(HaveOccurred())
		return ip
	}
	port := func(svc *corev1.Service, name string) corev1.ServicePort {
		p, err := framework.ServicePort(svc, name)
		Expect(err).NotTo(HaveOccurred())
		return p
	}
	// unanswered asserts target stops answering: silentRun probes in a
	// row fail as want says (nil: any failure).
	unanswered := func(ctx SpecContext, src framework.Source, kind, target, service, what string, want func(framework.Result) bool) {
		_, err := f.Unanswered(ctx, src, kind, target, service, what, want, silentRun, silentProbe, reachable)
		Expect(err).NotTo(HaveOccurred())
	}
	// onlyFrom asserts that, once target answers at all, 10 probes in a
	// row are all answered by backend.
	onlyFrom := func(ctx SpecContext, src framework.Source, kind, target, service, backend string) {
		_, err := f.Reach(ctx, src, kind, target, service, []string{backend}, reachable)
		Expect(err).NotTo(HaveOccurred())
		seen, failed := f.Sample(ctx, src, kind, target, 10)
		Expect(framework.Only(seen, backend)).To(BeTrue(), "%s -> %s %s (%s): want every answer from %s, got %v (last failure %v)",
			src.Description, kind, target, service, backend, seen, failed)
	}

	BeforeAll(func(ctx SpecContext) {
		var err error
		ns, err = f.CreateNamespace(ctx, "feat")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(f.DeleteNamespace(ctx, ns)).To(Succeed()) })

		n := int32(f.Nodes)
		nodes = f.NodeNames()
		pinnedNode, otherNode = nodes[0], nodes[len(nodes)-1]
		for _, b := range []framework.Backends{
			{Namespace: ns, Name: "backend", Labels: map[string]string{"app": "backend", "named": "yes"}, Replicas: n, OnePerNode: true},
			{Namespace: ns, Name: "client", Labels: map[string]string{"app": "client"}, Replicas: n, OnePerNode: true},
			{Namespace: ns, Name: "pinned", Labels: map[string]string{"app": "pinned"}, Replicas: 1, NodeName: pinnedNode},
			{Namespace: ns, Name: "alt", Labels: map[string]string{"app": "alt", "named": "yes"}, Replicas: 1, NodeName: otherNode, HTTPPort: 9090, UDPPort: 9091},
		} {
			Expect(f.DeployNetserver(ctx, b)).To(Succeed())
		}
		pods, err := f.WaitPodsReady(ctx, ns, "app=backend", int(n), podsReady)
		Expect(err).NotTo(HaveOccurred())
		backendOn = map[string]string{}
		for _, p := range pods {
			backendOn[p.Spec.NodeName] = p.Name
			backends = append(backends, p.Name)
		}
		clients, err = f.WaitPodsReady(ctx, ns, "app=client", int(n), podsReady)
		Expect(err).NotTo(HaveOccurred())
		for i, c := range clients {
			Expect(c.Spec.NodeName).To(Equal(nodes[i]), "one client per node, in node order")
		}
		one, err := f.WaitPodsReady(ctx, ns, "app=pinned", 1, podsReady)
		Expect(err).NotTo(HaveOccurred())
		pinned = one[0]
		one, err = f.WaitPodsReady(ctx, ns, "app=alt", 1, podsReady)
		Expect(err).NotTo(HaveOccurred())
		alt = one[0].Name
	}, NodeTimeout(4*time.Minute))

	It("serves every port of a multi-port Service, resolving a named targetPort per pod", Label("feature:multi-port", "tcp", "udp"), func(ctx SpecContext) {
		// Two TCP ports onto the same named port, one UDP port; the
		// backends name port 8080 "http", alt names 9090 so.
		svc := create(ctx, "multi", corev1.ServiceTypeClusterIP, map[string]string{"named": "yes"}, func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http-alt", Port: 8000, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP})
		})
		_, err := f.WaitEndpoints(ctx, ns, "multi", len(backends)+1, podsReady)
		Expect(err).NotTo(HaveOccurred())
		all := append([]string{alt}, backends...)
		for _, c := range clients {
			for _, p := range []string{"http", "http-alt"} {
				_, err := f.Reach(ctx, f.FromPod(c), framework.HTTP, url(svc.Spec.ClusterIP, port(svc, p).Port, "hostname"), ns+"/multi:"+p, all, reachable)
				Expect(err).NotTo(HaveOccurred(), "port %s", p)
			}
			_, err := f.Reach(ctx, f.FromPod(c), framework.UDP, framework.HostPort(svc.Spec.ClusterIP, port(svc, "udp").Port), ns+"/multi:udp", all, reachable)
			Expect(err).NotTo(HaveOccurred(), "port udp")
		}
	}, SpecTimeout(3*time.Minute))

	It("serves the same port number over TCP and UDP in one Service", Label("feature:port-protocols", "tcp", "udp"), func(ctx SpecContext) {
		svc := create(ctx, "dual", corev1.ServiceTypeNodePort, map[string]string{"app": "backend"}, func(s *corev1.Service) {
			s.Spec.Ports[1].Port = 80
		})
		tcp, udp := port(svc, "http"), port(svc, "udp")
		Expect(tcp.Port).To(Equal(udp.Port))
		for _, c := range clients {
			_, err := f.Reach(ctx, f.FromPod(c), framework.HTTP, url(svc.Spec.ClusterIP, tcp.Port, "hostname"), ns+"/dual:80/TCP", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
			_, err = f.Reach(ctx, f.FromPod(c), framework.UDP, framework.HostPort(svc.Spec.ClusterIP, udp.Port), ns+"/dual:80/UDP", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
		}
		// And through each protocol's own node port from outside.
		ip := nodeIP(nodes[0])
		_, err := f.Reach(ctx, f.FromOutside(), framework.HTTP, url(ip, tcp.NodePort, "hostname"), ns+"/dual:80/TCP nodeport", backends, reachable)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.Reach(ctx, f.FromOutside(), framework.UDP, framework.HostPort(ip, udp.NodePort), ns+"/dual:80/UDP nodeport", backends, reachable)
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(3*time.Minute))

	It("with externalTrafficPolicy Local keeps the client IP, uses only local endpoints and answers health checks 200/503", Label("feature:external-traffic-policy-local", "tcp", "udp"), func(ctx SpecContext) {
		// LoadBalancer, not NodePort: only a LoadBalancer gets a
		// healthCheckNodePort. No ingress IP is needed for node ports.
		local := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
		every := create(ctx, "etp-every", corev1.ServiceTypeLoadBalancer, map[string]string{"app": "backend"}, local)
		one := create(ctx, "etp-one", corev1.ServiceTypeLoadBalancer, map[string]string{"app": "pinned"}, local)
		Expect(every.Spec.HealthCheckNodePort).NotTo(BeZero())
		Expect(one.Spec.HealthCheckNodePort).NotTo(BeZero())
		out := f.FromOutside()

		By("each node's NodePort answers from that node's endpoint only, over TCP and UDP")
		for _, node := range nodes {
			ip := nodeIP(node)
			onlyFrom(ctx, out, framework.HTTP, url(ip, port(every, "http").NodePort, "hostname"), ns+"/etp-every", backendOn[node])
			onlyFrom(ctx, out, framework.UDP, framework.HostPort(ip, port(every, "udp").NodePort), ns+"/etp-every", backendOn[node])
			_, err := f.WaitHealthCheck(ctx, out, url(ip, every.Spec.HealthCheckNodePort, ""), ns, "etp-every", 200, 1, reachable)
			Expect(err).NotTo(HaveOccurred())
		}

		By("the backend sees the outside client's own address")
		ip := nodeIP(pinnedNode)
		r := f.Probe(ctx, out, framework.HTTP, url(ip, port(one, "http").NodePort, "clientip"), probeWindow)
		Expect(r.OK).To(BeTrue(), "outside -> %s NodePort /clientip: %v", pinnedNode, r)
		host, _, err := net.SplitHostPort(r.Answer)
		Expect(err).NotTo(HaveOccurred(), "/clientip answered %q", r.Answer)
		Expect(host).To(Equal(f.Cluster.OutsideIP()), "externalTrafficPolicy Local must not masquerade the client")
		ur := f.Probe(ctx, out, framework.UDP, framework.HostPort(ip, port(one, "udp").NodePort), probeWindow)
		Expect(ur.OK).To(BeTrue(), "outside -> %s UDP NodePort: %v", pinnedNode, ur)
		Expect(strings.Fields(ur.Answer)).To(HaveLen(2))
		Expect(strings.Fields(ur.Answer)[1]).To(HavePrefix(f.Cluster.OutsideIP()+":"), "UDP client address as the backend saw it")

		By("a node without a local endpoint drops the NodePort and says 503 on the health check")
		_, err = f.WaitHealthCheck(ctx, out, url(ip, one.Spec.HealthCheckNodePort, ""), ns, "etp-one", 200, 1, reachable)
		Expect(err).NotTo(HaveOccurred())
		for _, node := range nodes {
			if node == pinnedNode {
				continue
			}
			other := nodeIP(node)
			unanswered(ctx, out, framework.HTTP, url(other, port(one, "http").NodePort, "hostname"), ns+"/etp-one", "dropped (no local endpoint)", timedOut)
			unanswered(ctx, out, framework.UDP, framework.HostPort(other, port(one, "udp").NodePort), ns+"/etp-one", "dropped (no local endpoint)", timedOut)
			_, err = f.WaitHealthCheck(ctx, out, url(other, one.Spec.HealthCheckNodePort, ""), ns, "etp-one", 503, 0, reachable)
			Expect(err).NotTo(HaveOccurred())
		}
	}, SpecTimeout(4*time.Minute))

	It("with internalTrafficPolicy Local answers from the client's node only", Label("feature:internal-traffic-policy-local", "tcp", "udp"), func(ctx SpecContext) {
		local := func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
		}
		every := create(ctx, "itp-every", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, local)
		one := create(ctx, "itp-one", corev1.ServiceTypeClusterIP, map[string]string{"app": "pinned"}, local)
		for i, c := range clients {
			onlyFrom(ctx, f.FromPod(c), framework.HTTP, url(every.Spec.ClusterIP, 80, "hostname"), ns+"/itp-every", backendOn[nodes[i]])
			onlyFrom(ctx, f.FromPod(c), framework.UDP, framework.HostPort(every.Spec.ClusterIP, 81), ns+"/itp-every", backendOn[nodes[i]])
		}
		for i, c := range clients {
			if nodes[i] == pinnedNode {
				onlyFrom(ctx, f.FromPod(c), framework.HTTP, url(one.Spec.ClusterIP, 80, "hostname"), ns+"/itp-one", pinned.Name)
				continue
			}
			// Upstream drops it (the Service has endpoints, just none
			// here). In IPVS mode the virtual server is left without real
			// servers, and the kernel answers that with ICMP port
			// unreachable (ip_vs_leave), upstream's ipvs mode as ours:
			// not answered is what holds in every mode.
			what, dropped := "dropped (no local endpoint)", timedOut
			if nodeMode(nodes[i]) == ipvs {
				what, dropped = "not answered (no local endpoint: IPVS has no real server)", nil
			}
			unanswered(ctx, f.FromPod(c), framework.HTTP, url(one.Spec.ClusterIP, 80, "hostname"), ns+"/itp-one", what, dropped)
			unanswered(ctx, f.FromPod(c), framework.UDP, framework.HostPort(one.Spec.ClusterIP, 81), ns+"/itp-one", what, dropped)
		}
	}, SpecTimeout(3*time.Minute))

	It("holds sessionAffinity ClientIP, and switching it off and on takes effect", Label("feature:session-affinity", "tcp"), func(ctx SpecContext) {
		svc := create(ctx, "affinity", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		})
		target := url(svc.Spec.ClusterIP, 80, "hostname")
		const run = 20 // two backends: 20 in a row from one by chance is 2^-19
		// A run is 20 probes back to back: on a kernel-VM node (TCG) one
		// probe takes 1-2 s, so the run gets that on top of the time to
		// take effect.
		sticky := reachable + run*2*time.Second
		var switched []float64
		stick := func(c corev1.Pod, since time.Time) {
			src := f.FromPod(c)
			var first string
			seen, err := f.FirstOfRun(ctx, src, framework.HTTP, target, ns+"/affinity", "every answer from one backend", func(r framework.Result) bool {
				if first == "" || r.Backend() != first {
					first = r.Backend()
					return false
				}
				return r.OK
			}, run-1, sticky)
			Expect(err).NotTo(HaveOccurred())
			if !since.IsZero() {
				switched = append(switched, float64(seen.Sub(since).Microseconds())/1000)
			}
		}
		for _, c := range clients {
			stick(c, time.Time{})
		}

		By("affinity off: every backend answers again")
		_, off, err := f.UpdateService(ctx, ns, "affinity", func(s *corev1.Service) {
			s.Spec.SessionAffinity, s.Spec.SessionAffinityConfig = corev1.ServiceAffinityNone, nil
		})
		Expect(err).NotTo(HaveOccurred())
		for _, c := range clients {
			_, err := f.Reach(ctx, f.FromPod(c), framework.HTTP, target, ns+"/affinity", backends, reachable)
			Expect(err).NotTo(HaveOccurred(), "sessionAffinity None")
		}
		switched = append(switched, float64(time.Since(off).Microseconds())/1000)

		By("affinity on again: one backend per client again")
		_, on, err := f.UpdateService(ctx, ns, "affinity", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		})
		Expect(err).NotTo(HaveOccurred())
		stick(clients[0], on)
		f.RecordFigure(entry.Figure{Name: "affinity-switch-propagation", Title: "sessionAffinity switched: API write -> probes that show it (off: every backend seen; on: first of a sticky run)", Unit: "ms", Values: switched})
	}, SpecTimeout(6*time.Minute))

	It("does not proxy headless or ExternalName Services", Label("feature:headless", "feature:externalname", "tcp"), func(ctx SpecContext) {
		headless := create(ctx, "headless", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, func(s *corev1.Service) {
			s.Spec.ClusterIP = corev1.ClusterIPNone
		})
		Expect(headless.Spec.ClusterIP).To(Equal(corev1.ClusterIPNone))
		create(ctx, "external-name", corev1.ServiceTypeExternalName, nil, func(s *corev1.Service) {
			s.Spec.ExternalName = "backend.example.invalid"
		})
		// A ClusterIP Service labelled headless: it has an IP and
		// endpoints, and a proxier must still leave it alone.
		labelled := create(ctx, "labelled", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, func(s *corev1.Service) {
			s.Labels = map[string]string{corev1.IsHeadlessService: ""}
		})
		_, err := f.WaitEndpoints(ctx, ns, "headless", len(backends), podsReady)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WaitEndpoints(ctx, ns, "labelled", len(backends), podsReady)
		Expect(err).NotTo(HaveOccurred())
		// Shown proxied by the same proxiers meanwhile: a control Service.
		control := create(ctx, "control", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, nil)
		_, err = f.Reach(ctx, f.FromPod(clients[0]), framework.HTTP, url(control.Spec.ClusterIP, 80, "hostname"), ns+"/control", backends, reachable)
		Expect(err).NotTo(HaveOccurred())
		for _, c := range clients {
			unanswered(ctx, f.FromPod(c), framework.HTTP, url(labelled.Spec.ClusterIP, 80, "hostname"), ns+"/labelled",
				"not proxied (labelled "+corev1.IsHeadlessService+")", nil)
		}
		for _, node := range nodes {
			rules, err := f.Rules(ctx, node)
			Expect(err).NotTo(HaveOccurred())
			if nodeMode(node) == ipvs {
				// Virtual servers carry no names: look for the addresses
				// (headless and ExternalName Services have none).
				Expect(rules).To(ContainSubstring(framework.HostPort(control.Spec.ClusterIP, 80)), "node %s: the control Service has no virtual server (the check below would see one)", node)
				Expect(rules).NotTo(ContainSubstring(framework.HostPort(labelled.Spec.ClusterIP, 80)), "node %s has a virtual server for %s/labelled", node, ns)
				continue
			}
			Expect(rules).To(ContainSubstring(ns+"/control"), "node %s: the rules name proxied Services (the check below would see one)", node)
			for _, name := range []string{"headless", "external-name", "labelled"} {
				Expect(rules).NotTo(ContainSubstring(ns+"/"+name+":"), "node %s has rules for %s/%s", node, ns, name)
				Expect(rules).NotTo(ContainSubstring(ns+"/"+name+"/"), "node %s has rules for %s/%s", node, ns, name)
			}
		}
		By("removing the headless label makes it an ordinary Service")
		_, _, err = f.UpdateService(ctx, ns, "labelled", func(s *corev1.Service) { delete(s.Labels, corev1.IsHeadlessService) })
		Expect(err).NotTo(HaveOccurred())
		_, err = f.Reach(ctx, f.FromPod(clients[0]), framework.HTTP, url(labelled.Spec.ClusterIP, 80, "hostname"), ns+"/labelled", backends, reachable)
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(3*time.Minute))

	It("serves externalIPs from outside through a node and from pods", Label("feature:external-ips", "tcp", "udp"), func(ctx SpecContext) {
		create(ctx, "external-ip", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, func(s *corev1.Service) {
			s.Spec.ExternalIPs = []string{externalIP}
		})
		for _, node := range nodes {
			Expect(f.RouteFromOutside(ctx, externalIP, node)).To(Succeed())
			_, err := f.Reach(ctx, f.FromOutside(), framework.HTTP, url(externalIP, 80, "hostname"), ns+"/external-ip via "+node, backends, reachable)
			Expect(err).NotTo(HaveOccurred())
			_, err = f.Reach(ctx, f.FromOutside(), framework.UDP, framework.HostPort(externalIP, 81), ns+"/external-ip via "+node, backends, reachable)
			Expect(err).NotTo(HaveOccurred())
		}
		for _, c := range clients {
			_, err := f.Reach(ctx, f.FromPod(c), framework.HTTP, url(externalIP, 80, "hostname"), ns+"/external-ip", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
		}
	}, SpecTimeout(3*time.Minute))

	It("serves a LoadBalancer ingress IP to the loadBalancerSourceRanges only", Label("feature:loadbalancer", "tcp"), func(ctx SpecContext) {
		// Before the Service: its ranges name the outside client, and
		// where there is none ("" + "/32") the API server refuses it.
		f.SkipWithoutOutside()
		allowed := clients[0]
		svc := create(ctx, "lb", corev1.ServiceTypeLoadBalancer, map[string]string{"app": "backend"}, func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{f.Cluster.OutsideIP() + "/32", allowed.Status.PodIP + "/32"}
		})
		_, err := f.SetLoadBalancerIngress(ctx, ns, svc.Name, lbIP)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.RouteFromOutside(ctx, lbIP, otherNode)).To(Succeed())
		target := url(lbIP, 80, "hostname")
		_, err = f.Reach(ctx, f.FromOutside(), framework.HTTP, target, ns+"/lb", backends, reachable)
		Expect(err).NotTo(HaveOccurred(), "the outside client is in loadBalancerSourceRanges")
		_, err = f.Reach(ctx, f.FromPod(allowed), framework.HTTP, target, ns+"/lb", backends, reachable)
		Expect(err).NotTo(HaveOccurred(), "pod %s (%s) is in loadBalancerSourceRanges", allowed.Name, allowed.Status.PodIP)
		for _, c := range clients[1:] {
			unanswered(ctx, f.FromPod(c), framework.HTTP, target, ns+"/lb", "dropped (source "+c.Status.PodIP+" not in loadBalancerSourceRanges)", timedOut)
		}

		By("narrowing the ranges shuts the outside client out")
		_, _, err = f.UpdateService(ctx, ns, "lb", func(s *corev1.Service) {
			s.Spec.LoadBalancerSourceRanges = []string{allowed.Status.PodIP + "/32"}
		})
		Expect(err).NotTo(HaveOccurred())
		unanswered(ctx, f.FromOutside(), framework.HTTP, target, ns+"/lb", "dropped (outside client no longer in loadBalancerSourceRanges)", timedOut)
		_, err = f.Reach(ctx, f.FromPod(allowed), framework.HTTP, target, ns+"/lb", backends, reachable)
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(3*time.Minute))

	It("lets a pod reach itself through its own Service (hairpin)", Label("feature:hairpin", "tcp", "udp"), func(ctx SpecContext) {
		svc := create(ctx, "hairpin", corev1.ServiceTypeClusterIP, map[string]string{"app": "pinned"}, nil)
		self := f.FromPod(pinned)
		_, err := f.Reach(ctx, self, framework.HTTP, url(svc.Spec.ClusterIP, 80, "hostname"), ns+"/hairpin", []string{pinned.Name}, reachable)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.Reach(ctx, self, framework.UDP, framework.HostPort(svc.Spec.ClusterIP, 81), ns+"/hairpin", []string{pinned.Name}, reachable)
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(2*time.Minute))

	It("follows type changes ClusterIP -> NodePort -> ExternalName -> ClusterIP", Label("feature:type-change", "tcp"), func(ctx SpecContext) {
		svc := create(ctx, "morph", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, nil)
		in, out := f.FromPod(clients[0]), f.FromOutside()
		first := url(svc.Spec.ClusterIP, 80, "hostname")
		_, err := f.Reach(ctx, in, framework.HTTP, first, ns+"/morph ClusterIP", backends, reachable)
		Expect(err).NotTo(HaveOccurred())
		var opened, closed []float64
		since := func(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

		By("NodePort: the node port opens on every node; the cluster IP stays")
		svc, written, err := f.UpdateService(ctx, ns, "morph", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
		Expect(err).NotTo(HaveOccurred())
		np := port(svc, "http").NodePort
		Expect(np).NotTo(BeZero())
		for _, node := range nodes {
			_, err := f.Reach(ctx, out, framework.HTTP, url(nodeIP(node), np, "hostname"), ns+"/morph NodePort", backends, reachable)
			Expect(err).NotTo(HaveOccurred())
			opened = append(opened, since(written))
		}
		_, err = f.Reach(ctx, in, framework.HTTP, first, ns+"/morph NodePort", backends, reachable)
		Expect(err).NotTo(HaveOccurred())

		By("ExternalName: the node port closes and the cluster IP stops answering")
		_, written, err = f.UpdateService(ctx, ns, "morph", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "backend.example.invalid"
			s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy = "", nil, nil, nil
			s.Spec.ExternalTrafficPolicy, s.Spec.InternalTrafficPolicy = "", nil
			for i := range s.Spec.Ports {
				s.Spec.Ports[i].NodePort = 0
			}
		})
		Expect(err).NotTo(HaveOccurred())
		for _, node := range nodes {
			unanswered(ctx, out, framework.HTTP, url(nodeIP(node), np, "hostname"), ns+"/morph ExternalName", "closed", nil)
			closed = append(closed, since(written))
		}
		unanswered(ctx, in, framework.HTTP, first, ns+"/morph ExternalName", "not answered (no cluster IP)", nil)

		By("ClusterIP again: a new cluster IP answers, the node port stays closed")
		svc, _, err = f.UpdateService(ctx, ns, "morph", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeClusterIP, ""
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec.ClusterIP).NotTo(BeEmpty())
		_, err = f.Reach(ctx, in, framework.HTTP, url(svc.Spec.ClusterIP, 80, "hostname"), ns+"/morph ClusterIP again", backends, reachable)
		Expect(err).NotTo(HaveOccurred())
		unanswered(ctx, out, framework.HTTP, url(nodeIP(nodes[0]), np, "hostname"), ns+"/morph ClusterIP again", "closed", nil)
		f.RecordFigure(entry.Figure{Name: "type-change-nodeport-open", Title: "ClusterIP -> NodePort: API write -> node port answers (per node, cumulative)", Unit: "ms", Values: opened})
		f.RecordFigure(entry.Figure{Name: "type-change-nodeport-close", Title: "NodePort -> ExternalName: API write -> node port closed (3 failed probes in a row, per node, cumulative)", Unit: "ms", Values: closed})
	}, SpecTimeout(3*time.Minute))

	// Last: it breaks a node until the proxier repairs it. On a mixed
	// cluster, the first node of each mode in turn: each mode deletes and
	// restores its own kind of rules.
	It("restores a node's Service rules after someone deletes them by hand (on a mixed cluster: a node of each mode, each by its mode's rules)", Label("feature:rules-restored", "tcp"), func(ctx SpecContext) {
		svc := create(ctx, "restore", corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}, nil)
		target := url(svc.Spec.ClusterIP, 80, "hostname")
		var took []float64
		var where []string
		seen := map[string]bool{}
		for i, node := range nodes {
			mode := nodeMode(node)
			if seen[mode] {
				continue
			}
			seen[mode] = true
			took = append(took, restoreRules(ctx, f.FromPod(clients[i]), node, target, ns, backends, len(took)))
			where = append(where, node+" ("+mode+")")
		}
		f.RecordFigure(entry.Figure{Name: "rules-restored", Title: "Rules deleted by hand on a node -> the Service answers there again (" + strings.Join(where, ", ") + ")", Unit: "s", Values: took})
	}, SpecTimeout(8*time.Minute))
})

// restoreRules deletes node's rules by hand, proves the Service broken for
// src (on node), and returns the seconds until it answers again. nudge
// numbers the Service change that follows.
func restoreRules(ctx SpecContext, src framework.Source, node, target, ns string, backends []string, nudge int) float64 {
	_, err := f.Reach(ctx, src, framework.HTTP, target, ns+"/restore", backends, reachable)
	Expect(err).NotTo(HaveOccurred())
	ran, err := f.DeleteProxyRules(ctx, node)
	Expect(err).NotTo(HaveOccurred(), ran)
	deleted := time.Now()
	AddReportEntry("rules deleted on "+node, ran, ReportEntryVisibilityFailureOrVerbose)
	// Proof the deletion broke the Service, so the repair below means
	// something.
	_, err = f.FirstProbe(ctx, src, framework.HTTP, target, ns+"/restore", "the Service broken on "+node, func(r framework.Result) bool { return !r.OK }, 5*time.Second)
	Expect(err).NotTo(HaveOccurred(), "deleting the rules of %s did not break the Service; ran:\n%s", node, ran)
	// A cluster is never still: a Service change follows (upstream
	// nftables rebuilds its table on the full sync that the failed
	// partial sync of this change asks for).
	mustCreate(ctx, framework.NetserverService(ns, fmt.Sprintf("restore-nudge-%d", nudge), corev1.ServiceTypeClusterIP, map[string]string{"app": "backend"}))
	back, err := f.FirstProbe(ctx, src, framework.HTTP, target, ns+"/restore", "the Service answering again on "+node, func(r framework.Result) bool { return r.OK }, restored)
	Expect(err).NotTo(HaveOccurred(), "rules of %s not restored within %s of deleting them", node, restored)
	_, err = f.Reach(ctx, src, framework.HTTP, target, ns+"/restore", backends, reachable)
	Expect(err).NotTo(HaveOccurred())
	return back.Sub(deleted).Seconds()
}

// timedOut is a dropped packet as the client sees it: no answer at all,
// not a refusal.
func timedOut(r framework.Result) bool { return !r.OK && r.Class == "timeout" }
