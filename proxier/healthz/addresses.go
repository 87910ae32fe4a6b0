package healthz

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// NodeAddresses lists the addresses of namespace netnsName ("" = here) that
// fall in one of cidrs (nodePortAddresses), as kube-proxy's
// NodePortAddresses.GetNodeIPs does for health check ports. An empty cidrs
// returns nil, meaning "listen on every address".
func NodeAddresses(netnsName string, cidrs []netip.Prefix) ([]netip.Addr, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	nsh, err := netns.Handle(netnsName)
	if err != nil {
		return nil, err
	}
	defer nsh.Close()
	// Route family only: netlink.NewHandleAt without families also opens
	// xfrm, which a kernel without xfrm_user (the kernel VM) refuses.
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in network namespace %q: %w", netnsName, err)
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses in network namespace %q: %w", netnsName, err)
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		for _, c := range cidrs {
			if c.Contains(ip) && !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address in network namespace %q matches nodePortAddresses %v", netnsName, cidrs)
	}
	return out, nil
}
