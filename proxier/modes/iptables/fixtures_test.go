package iptables

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// Builders for Views: state.Tracker makes these in production; tests make
// them by hand against the types.go contract.

func spn(ns, name, port string) state.ServicePortName {
	return state.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: port, Protocol: v1.ProtocolTCP}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ep(addr string, port int32, local bool) state.Endpoint {
	return state.Endpoint{IP: ip(addr), Port: port, Ready: true, Serving: true, IsLocal: local, NodeName: map[bool]string{true: "node-a", false: "node-b"}[local]}
}

type svcOpt func(*state.ServicePort)

// svc builds a ServicePort with ClusterEndpoints/LocalEndpoints/AllEndpoints
// derived from eps the way the contract says state does.
func svc(name state.ServicePortName, clusterIP string, port int32, eps []state.Endpoint, opts ...svcOpt) *state.ServicePort {
	sp := &state.ServicePort{Name: name, Protocol: name.Protocol, ClusterIP: ip(clusterIP), Port: port}
	for _, e := range eps {
		sp.ClusterEndpoints = append(sp.ClusterEndpoints, e)
		if e.IsLocal {
			sp.LocalEndpoints = append(sp.LocalEndpoints, e)
		}
	}
	sp.AllEndpoints = sp.ClusterEndpoints
	sp.HasEndpoints = len(eps) > 0
	for _, o := range opts {
		o(sp)
	}
	return sp
}

func nodePort(p int32) svcOpt { return func(s *state.ServicePort) { s.NodePort = p } }
func etpLocal(hc int32) svcOpt {
	return func(s *state.ServicePort) { s.ExternalPolicyLocal, s.HealthCheckNodePort = true, hc }
}
func itpLocal() svcOpt { return func(s *state.ServicePort) { s.InternalPolicyLocal = true } }
func affinity(sec int32) svcOpt {
	return func(s *state.ServicePort) { s.SessionAffinity, s.StickySeconds = true, sec }
}
func externalIPs(ips ...string) svcOpt {
	return func(s *state.ServicePort) {
		for _, i := range ips {
			s.ExternalIPs = append(s.ExternalIPs, ip(i))
		}
	}
}
func loadBalancer(ips []string, ranges ...string) svcOpt {
	return func(s *state.ServicePort) {
		for _, i := range ips {
			s.LoadBalancerIPs = append(s.LoadBalancerIPs, ip(i))
		}
		for _, r := range ranges {
			s.LoadBalancerSourceRanges = append(s.LoadBalancerSourceRanges, netip.MustParsePrefix(r))
		}
	}
}
func protocol(p v1.Protocol) svcOpt {
	return func(s *state.ServicePort) { s.Protocol, s.Name.Protocol = p, p }
}

// hasEndpointsElsewhere: endpoints exist, but none on this node.
func hasEndpointsElsewhere() svcOpt { return func(s *state.ServicePort) { s.HasEndpoints = true } }

func view(family v1.IPFamily, sps ...*state.ServicePort) *state.View {
	v := &state.View{
		Family:   family,
		Node:     state.Node{Name: "node-a", IPs: []netip.Addr{ip("192.168.0.2")}, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.180.0.0/24")}},
		Services: map[state.ServicePortName]*state.ServicePort{},
	}
	if family == v1.IPv6Protocol {
		v.Node.IPs = []netip.Addr{ip("fd00::2")}
		v.Node.PodCIDRs = []netip.Prefix{netip.MustParsePrefix("fd00:10:180::/64")}
	}
	for _, sp := range sps {
		v.Services[sp.Name] = sp
	}
	return v
}

func testConfig() renderConfig {
	return renderConfig{
		family:      v1.IPv4Protocol,
		masqMark:    "0x4000",
		localDetect: LocalDetect{Mode: LocalClusterCIDR, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		nodePortAll: true,
	}
}
