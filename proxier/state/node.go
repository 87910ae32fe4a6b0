package state

import (
	"maps"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// renderNode is what the proxier knows of its node. n may be nil (not seen
// yet); gone says the Node object was deleted, which drains the node.
func renderNode(n *v1.Node, name string, family v1.IPFamily, gone bool) Node {
	out := Node{Name: name, Deleting: gone}
	if n == nil {
		return out
	}
	out.Labels = maps.Clone(n.Labels)
	out.Zone = n.Labels[v1.LabelTopologyZone]
	if n.DeletionTimestamp != nil {
		out.Deleting = true
	}
	// InternalIPs first, then ExternalIPs, like upstream's node IP lookup.
	for _, want := range []v1.NodeAddressType{v1.NodeInternalIP, v1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != want {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err != nil {
				klog.V(2).InfoS("Ignoring unparsable node address", "node", name, "address", a.Address)
				continue
			}
			ip = ip.Unmap()
			if ofFamily(ip, family) && !slices.Contains(out.IPs, ip) {
				out.IPs = append(out.IPs, ip)
			}
		}
	}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			klog.V(2).InfoS("Ignoring unparsable node pod CIDR", "node", name, "podCIDR", c)
			continue
		}
		if ofFamily(p.Addr(), family) {
			out.PodCIDRs = append(out.PodCIDRs, p.Masked())
		}
	}
	return out
}

// nodeNeedsFull reports whether going from a to b changes what the modes
// program outside single Services: addresses (NodePorts), pod CIDRs
// (local-traffic detection), the zone (topology of every Service) or
// draining. Other label changes are not a sync at all.
func nodeNeedsFull(a, b Node) bool {
	return a.Name != b.Name || a.Zone != b.Zone || a.Deleting != b.Deleting ||
		!slices.Equal(a.IPs, b.IPs) || !slices.Equal(a.PodCIDRs, b.PodCIDRs)
}

// ofFamily reports whether ip belongs to family. IPv4-mapped IPv6
// addresses must be unmapped by the caller.
func ofFamily(ip netip.Addr, family v1.IPFamily) bool {
	if family == v1.IPv6Protocol {
		return ip.Is6()
	}
	return ip.Is4()
}
