package conntrack

import (
	"net/netip"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/vishvananda/netlink"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// endpointSet is the serving endpoints (IP and port) of one ServicePort.
type endpointSet map[netip.AddrPort]struct{}

// frontends indexes the UDP Services of view the way kube-proxy v1.34's
// CleanStaleEntries does: Service IP:port (ClusterIP, externalIPs,
// LoadBalancer IPs) and NodePort, each to the serving endpoints behind it.
// A ServicePort without serving endpoints is left out: with nothing to send
// to, no flow of it can be "stale", and its traffic is rejected anyway.
func frontends(view *state.View) (map[netip.AddrPort]endpointSet, map[uint16]endpointSet) {
	byIP := map[netip.AddrPort]endpointSet{}
	byNodePort := map[uint16]endpointSet{}
	if view == nil {
		return byIP, byNodePort
	}
	for _, sp := range view.Services {
		if sp.Protocol != v1.ProtocolUDP {
			continue
		}
		eps := endpointSet{}
		for _, ep := range sp.AllEndpoints {
			// Serving, not ready: a terminating pod still answering keeps
			// its flows, like TCP connections keep going to it.
			if ep.Serving || ep.Ready {
				eps[netip.AddrPortFrom(ep.IP.Unmap(), uint16(ep.Port))] = struct{}{}
			}
		}
		if len(eps) == 0 {
			continue
		}
		port := uint16(sp.Port)
		ips := append([]netip.Addr{sp.ClusterIP}, sp.LoadBalancerIPs...)
		ips = append(ips, sp.ExternalIPs...)
		for _, ip := range ips {
			if ip.IsValid() {
				byIP[netip.AddrPortFrom(ip.Unmap(), port)] = eps
			}
		}
		if sp.NodePort != 0 {
			byNodePort[uint16(sp.NodePort)] = eps
		}
	}
	return byIP, byNodePort
}

// staleFilters returns one filter per stale flow of flows: a UDP flow whose
// original destination is a Service frontend but whose reply source is not
// one of that frontend's serving endpoints. That covers both a flow DNATed
// to a backend that is gone and a flow that was never DNATed (its reply
// source is the Service IP itself) because it started before the Service
// had endpoints. Duplicates are folded: netlink tries every filter on
// every flow.
func staleFilters(view *state.View, flows []*netlink.ConntrackFlow) []netlink.CustomConntrackFilter {
	byIP, byNodePort := frontends(view)
	seen := map[flowFilter]bool{}
	var out []netlink.CustomConntrackFilter
	add := func(f flowFilter) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, flow := range flows {
		if flow.Forward.Protocol != unix.IPPROTO_UDP {
			continue
		}
		origDst := addr(flow.Forward.DstIP)
		origPort := flow.Forward.DstPort
		replySrc := netip.AddrPortFrom(addr(flow.Reverse.SrcIP), flow.Reverse.SrcPort)

		if eps, ok := byIP[netip.AddrPortFrom(origDst, origPort)]; ok {
			if _, serving := eps[replySrc]; !serving {
				klog.V(6).InfoS("Stale conntrack flow to a Service IP", "origDst", origDst, "origPortDst", origPort, "replySrc", replySrc)
				add(flowFilter{protocol: unix.IPPROTO_UDP, origDst: origDst, origPort: origPort, replySrc: replySrc})
			}
		}
		if eps, ok := byNodePort[origPort]; ok {
			if _, serving := eps[replySrc]; !serving {
				klog.V(6).InfoS("Stale conntrack flow to a NodePort", "origPortDst", origPort, "replySrc", replySrc)
				add(flowFilter{protocol: unix.IPPROTO_UDP, origPort: origPort, replySrc: replySrc})
			}
		}
	}
	return out
}
