package state

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Fixture builders: a Service, EndpointSlice or Node with sensible defaults,
// changed by small option functions so that each test states only what it
// is about.

const (
	thisNode  = "node-a"
	otherNode = "node-b"
	testNS    = "default"
)

var cmpNetip = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

type svcOpt func(*v1.Service)

// newService is a ClusterIP Service 10.0.0.1 with one TCP port "http" 80 -> 8080.
func newService(name string, opts ...svcOpt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  "10.0.0.1",
			ClusterIPs: []string{"10.0.0.1"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports:      []v1.ServicePort{svcPort("http", v1.ProtocolTCP, 80)},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func svcPort(name string, proto v1.Protocol, port int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Protocol: proto, Port: port}
}

func withPorts(ports ...v1.ServicePort) svcOpt {
	return func(s *v1.Service) { s.Spec.Ports = ports }
}

func withClusterIPs(families []v1.IPFamily, ips ...string) svcOpt {
	return func(s *v1.Service) {
		s.Spec.IPFamilies = families
		s.Spec.ClusterIPs = ips
		s.Spec.ClusterIP = ""
		if len(ips) > 0 {
			s.Spec.ClusterIP = ips[0]
		}
	}
}

func withType(t v1.ServiceType) svcOpt { return func(s *v1.Service) { s.Spec.Type = t } }

// withNodePort makes a NodePort Service (unless already LoadBalancer) with
// nodePort np on every port.
func withNodePort(np int32) svcOpt {
	return func(s *v1.Service) {
		if s.Spec.Type != v1.ServiceTypeLoadBalancer {
			s.Spec.Type = v1.ServiceTypeNodePort
		}
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = np
		}
	}
}

func withETPLocal() svcOpt {
	return func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
}

func withITPLocal() svcOpt {
	return func(s *v1.Service) {
		p := v1.ServiceInternalTrafficPolicyLocal
		s.Spec.InternalTrafficPolicy = &p
	}
}

func withExternalIPs(ips ...string) svcOpt {
	return func(s *v1.Service) { s.Spec.ExternalIPs = ips }
}

func withIngress(ing ...v1.LoadBalancerIngress) svcOpt {
	return func(s *v1.Service) { s.Status.LoadBalancer.Ingress = ing }
}

func ingress(ip string, mode *v1.LoadBalancerIPMode) v1.LoadBalancerIngress {
	return v1.LoadBalancerIngress{IP: ip, IPMode: mode}
}

func withSourceRanges(r ...string) svcOpt {
	return func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = r }
}

func withAnnotation(k, v string) svcOpt {
	return func(s *v1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func withAffinity(timeout *int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		if timeout != nil {
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: timeout}}
		}
	}
}

func withHealthCheckNodePort(p int32) svcOpt {
	return func(s *v1.Service) { s.Spec.HealthCheckNodePort = p }
}

func withRV(rv string) svcOpt { return func(s *v1.Service) { s.ResourceVersion = rv } }

type sliceOpt func(*discoveryv1.EndpointSlice)

// newSlice is an IPv4 slice of Service svc with one port "http" TCP 8080.
func newSlice(svc, name string, opts ...sliceOpt) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: testNS, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{slicePortOf("http", v1.ProtocolTCP, 8080)},
	}
	for _, o := range opts {
		o(es)
	}
	return es
}

func slicePortOf(name string, proto v1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
}

func withSlicePorts(p ...discoveryv1.EndpointPort) sliceOpt {
	return func(es *discoveryv1.EndpointSlice) { es.Ports = p }
}

func withEndpoints(eps ...discoveryv1.Endpoint) sliceOpt {
	return func(es *discoveryv1.EndpointSlice) { es.Endpoints = eps }
}

func withAddressType(t discoveryv1.AddressType) sliceOpt {
	return func(es *discoveryv1.EndpointSlice) { es.AddressType = t }
}

func withTriggerTime(at string) sliceOpt {
	return func(es *discoveryv1.EndpointSlice) {
		es.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: at}
	}
}

func withSliceRV(rv string) sliceOpt {
	return func(es *discoveryv1.EndpointSlice) { es.ResourceVersion = rv }
}

type epOpt func(*discoveryv1.Endpoint)

// newEP is a ready endpoint on the other node (ready left nil, which means ready).
func newEP(ip string, opts ...epOpt) discoveryv1.Endpoint {
	n := otherNode
	e := discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: &n}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func onNode(n string) epOpt { return func(e *discoveryv1.Endpoint) { e.NodeName = &n } }

func local() epOpt { return onNode(thisNode) }

func inZone(z string) epOpt { return func(e *discoveryv1.Endpoint) { e.Zone = &z } }

func notReady() epOpt {
	return func(e *discoveryv1.Endpoint) { e.Conditions.Ready = ptr(false); e.Conditions.Serving = ptr(false) }
}

// terminating marks the endpoint terminating (and so not ready), still
// serving or not.
func terminating(serving bool) epOpt {
	return func(e *discoveryv1.Endpoint) {
		e.Conditions.Ready = ptr(false)
		e.Conditions.Serving = ptr(serving)
		e.Conditions.Terminating = ptr(true)
	}
}

func zoneHints(z ...string) epOpt {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, n := range z {
			e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: n})
		}
	}
}

func nodeHints(nodes ...string) epOpt {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, n := range nodes {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: n})
		}
	}
}

type nodeOpt func(*v1.Node)

func newNode(name string, opts ...nodeOpt) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withZone(z string) nodeOpt {
	return func(n *v1.Node) { n.Labels[v1.LabelTopologyZone] = z }
}

func withLabel(k, v string) nodeOpt { return func(n *v1.Node) { n.Labels[k] = v } }

func withAddress(t v1.NodeAddressType, ip string) nodeOpt {
	return func(n *v1.Node) {
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: t, Address: ip})
	}
}

func withPodCIDRs(c ...string) nodeOpt {
	return func(n *v1.Node) { n.Spec.PodCIDR = c[0]; n.Spec.PodCIDRs = c }
}

func withDeletionTimestamp() nodeOpt {
	return func(n *v1.Node) { now := metav1.Now(); n.DeletionTimestamp = &now }
}

func ptr[T any](v T) *T { return &v }

// spName names a port of a Service in testNS.
func spName(svc, port string, proto v1.Protocol) ServicePortName {
	return ServicePortName{NamespacedName: types.NamespacedName{Namespace: testNS, Name: svc}, Port: port, Protocol: proto}
}

var httpOf = func(svc string) ServicePortName { return spName(svc, "http", v1.ProtocolTCP) }

// build feeds objects to a fresh synced tracker for family and takes one
// snapshot.
func build(t testing.TB, family v1.IPFamily, objs ...any) (*Tracker, *View, *Changes) {
	t.Helper()
	tr := NewTracker(thisNode, family)
	tr.SetSynced(true, true, true)
	feed(t, tr, objs...)
	view, changes := tr.Snapshot()
	return tr, view, changes
}

func feed(t testing.TB, tr *Tracker, objs ...any) {
	t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			tr.OnServiceAdd(o)
		case *discoveryv1.EndpointSlice:
			tr.OnEndpointSliceAdd(o)
		case *v1.Node:
			tr.OnNodeAdd(o)
		default:
			t.Fatalf("feed: unexpected %T", o)
		}
	}
}

// eps renders endpoints as "ip:port" plus flags for compact comparisons:
// "10.1.0.1:8080" or "10.1.0.1:8080 local,terminating".
func eps(list []Endpoint) []string {
	var out []string
	for _, e := range list {
		s := e.String()
		var flags []string
		if e.IsLocal {
			flags = append(flags, "local")
		}
		if e.Terminating {
			flags = append(flags, "terminating")
		}
		if len(flags) > 0 {
			s += " " + strings.Join(flags, ",")
		}
		out = append(out, s)
	}
	return out
}

func mustPort(t testing.TB, v *View, n ServicePortName) *ServicePort {
	t.Helper()
	sp, ok := v.Services[n]
	if !ok {
		t.Fatalf("view has no %v; it has %v", n, keys(v))
	}
	return sp
}

func keys(v *View) []string {
	var out []string
	for k := range v.Services {
		out = append(out, fmt.Sprintf("%s/%s", k, k.Protocol))
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range s {
		out = append(out, netip.MustParsePrefix(a))
	}
	return out
}
