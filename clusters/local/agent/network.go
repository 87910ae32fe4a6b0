package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/vishvananda/netlink"
)

// Route protocols (rtnetlink "proto" numbers, unused by the kernel and the
// usual daemons) that mark the routes the agent owns, so it can find and
// prune them without a record of its own.
const (
	protoNodeRoute = 0x50 // <other node's podCIDR> via <other node's IP>
	protoPodRoute  = 0x51 // <pod IP>/32 dev cali...
)

// setupNode prepares the node namespace for pods: the gateway address
// every pod's default route names, forwarding on, redirects off (pods on
// the same node reach each other through the node, which must not tell
// them to go direct).
func (a *Agent) setupNode() error {
	h, err := netlinkAt(a.cfg.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("node %s: lo: %w", a.cfg.NodeName, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("node %s: lo up: %w", a.cfg.NodeName, err)
	}
	// Scope host: the node answers ARP for it (and proxy_arp too) but never
	// picks it as a source address, so pods see the node's InternalIP.
	gw := &netlink.Addr{IPNet: hostNet(netip.MustParseAddr(gatewayIP)), Scope: int(netlink.SCOPE_HOST)}
	if err := h.AddrReplace(lo, gw); err != nil {
		return fmt.Errorf("node %s: address %s on lo: %w", a.cfg.NodeName, gatewayIP, err)
	}
	sysctls := [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/all/send_redirects", "0"},
		{"net/ipv4/conf/default/send_redirects", "0"},
	}
	if _, err := h.LinkByName("eth0"); err == nil {
		sysctls = append(sysctls, [2]string{"net/ipv4/conf/eth0/send_redirects", "0"})
	}
	for _, kv := range sysctls {
		if err := setSysctl(a.cfg.Netns, kv[0], kv[1]); err != nil {
			return fmt.Errorf("node %s: %w", a.cfg.NodeName, err)
		}
	}
	return nil
}

func hostNet(ip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}
}

// syncNodeRoutes keeps one route per other node, its podCIDR via its
// InternalIP (host-gw), and removes the ones whose node went away.
func (a *Agent) syncNodeRoutes(nodes []*corev1.Node) error {
	want := map[string]net.IP{}
	for _, n := range nodes {
		if n.Name == a.cfg.NodeName || n.Spec.PodCIDR == "" {
			continue
		}
		ip := internalIP(n)
		if ip == nil {
			continue
		}
		for _, cidr := range podCIDRs(n) {
			p, err := netip.ParsePrefix(cidr)
			if err != nil || !p.Addr().Is4() {
				continue
			}
			want[p.Masked().String()] = ip
		}
	}
	h, err := netlinkAt(a.cfg.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: protoNodeRoute}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("node %s: list routes: %w", a.cfg.NodeName, err)
	}
	var errs []error
	for _, r := range have {
		gw, ok := want[r.Dst.String()]
		if ok && gw.Equal(r.Gw) {
			delete(want, r.Dst.String())
			continue
		}
		if !ok {
			klog.InfoS("Removing route to a node that left", "node", a.cfg.NodeName, "dst", r.Dst, "via", r.Gw)
			if err := h.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("route %s via %s: %w", r.Dst, r.Gw, err))
			}
		}
	}
	for dst, gw := range want {
		_, ipnet, _ := net.ParseCIDR(dst)
		r := &netlink.Route{Dst: ipnet, Gw: gw, Protocol: protoNodeRoute}
		if err := h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", dst, gw, err))
			continue
		}
		klog.InfoS("Route to another node's pods", "node", a.cfg.NodeName, "dst", dst, "via", gw)
	}
	if len(errs) > 0 {
		return fmt.Errorf("node %s: routes to other nodes: %w", a.cfg.NodeName, errors.Join(errs...))
	}
	return nil
}

func internalIP(n *corev1.Node) net.IP {
	for _, addr := range n.Status.Addresses {
		if addr.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(addr.Address).To4(); ip != nil {
				return ip
			}
		}
	}
	return nil
}

func podCIDRs(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	return []string{n.Spec.PodCIDR}
}
