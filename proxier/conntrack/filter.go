package conntrack

import (
	"net/netip"

	"github.com/vishvananda/netlink"
)

// flowFilter selects the flows to delete, like kube-proxy's conntrackFilter
// with the fields its reconciler uses: protocol, the original destination
// (IP optional, port) and the reply source (the endpoint the flow was
// DNATed to, or the Service IP itself when it was not DNATed).
type flowFilter struct {
	protocol uint8
	origDst  netip.Addr // invalid: any (NodePort flows, to any node address)
	origPort uint16
	replySrc netip.AddrPort
}

var _ netlink.CustomConntrackFilter = flowFilter{}

// MatchConntrackFlow is called by netlink for every flow of the table.
func (f flowFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != f.protocol || flow.Forward.DstPort != f.origPort {
		return false
	}
	if f.origDst.IsValid() && addr(flow.Forward.DstIP) != f.origDst {
		return false
	}
	return netip.AddrPortFrom(addr(flow.Reverse.SrcIP), flow.Reverse.SrcPort) == f.replySrc
}

// addr converts a netlink IP; an IPv4 address may come 16 bytes long.
func addr(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
