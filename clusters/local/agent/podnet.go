package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// PodNetns names the network namespace of pod uid: prefix plus the first
// 12 characters of the UID. The lifecycle's ExecInPod uses it too.
func PodNetns(prefix string, uid types.UID) string {
	u := string(uid)
	if len(u) > 12 {
		u = u[:12]
	}
	return prefix + u
}

// hostVeth names the node side of pod uid's veth: cali + 11 hex digits of
// the UID, as Calico does: 15 characters, the most IFNAMSIZ allows.
func hostVeth(uid types.UID) string {
	hex := strings.ReplaceAll(string(uid), "-", "")
	if len(hex) > 11 {
		hex = hex[:11]
	}
	return hostVethPfx + hex
}

// setupSandbox makes sb.Netns with eth0 holding ip/32, default route via
// the link-local gateway, and on the node the veth sb.HostVeth with
// proxy_arp and a /32 route to ip. On error it leaves nothing behind.
func (a *Agent) setupSandbox(sb sandbox, ip netip.Addr) (err error) {
	defer func() {
		if err != nil {
			_ = a.teardownSandbox(sb)
		}
	}()
	// Recreated from scratch: a leftover of a failed attempt is stale.
	_ = a.teardownSandbox(sb)
	if out, err := exec.Command("ip", "netns", "add", sb.Netns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %w: %s", sb.Netns, err, strings.TrimSpace(string(out)))
	}
	podNs, err := netns.Handle(sb.Netns)
	if err != nil {
		return err
	}
	defer podNs.Close()
	node, err := netlinkAt(a.cfg.Netns)
	if err != nil {
		return err
	}
	defer node.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: sb.HostVeth},
		PeerName:      podInterface,
		PeerNamespace: netlink.NsFd(podNs),
	}
	if err := node.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: %w", sb.HostVeth, err)
	}
	if err := a.wirePodSide(sb.Netns, ip); err != nil {
		return err
	}
	host, err := node.LinkByName(sb.HostVeth)
	if err != nil {
		return fmt.Errorf("veth %s: %w", sb.HostVeth, err)
	}
	if err := setSysctl(a.cfg.Netns, "net/ipv4/conf/"+sb.HostVeth+"/proxy_arp", "1"); err != nil {
		return err
	}
	if err := node.LinkSetUp(host); err != nil {
		return fmt.Errorf("veth %s up: %w", sb.HostVeth, err)
	}
	route := &netlink.Route{
		LinkIndex: host.Attrs().Index,
		Dst:       hostNet(ip),
		Scope:     netlink.SCOPE_LINK,
		Src:       net.ParseIP(a.cfg.NodeIP),
		Protocol:  protoPodRoute,
	}
	if err := node.RouteReplace(route); err != nil {
		return fmt.Errorf("route %s dev %s: %w", ip, sb.HostVeth, err)
	}
	return nil
}

// wirePodSide configures lo and eth0 inside the pod namespace.
func (a *Agent) wirePodSide(ns string, ip netip.Addr) error {
	h, err := netlinkAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	for _, name := range []string{"lo", podInterface} {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", name, ns, err)
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s in %s up: %w", name, ns, err)
		}
	}
	eth, err := h.LinkByName(podInterface)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", podInterface, ns, err)
	}
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: hostNet(ip)}); err != nil {
		return fmt.Errorf("address %s in %s: %w", ip, ns, err)
	}
	gw := net.ParseIP(gatewayIP)
	routes := []*netlink.Route{
		{LinkIndex: eth.Attrs().Index, Dst: hostNet(netip.MustParseAddr(gatewayIP)), Scope: netlink.SCOPE_LINK},
		{LinkIndex: eth.Attrs().Index, Gw: gw},
	}
	for _, r := range routes {
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("route %s in %s: %w", r, ns, err)
		}
	}
	return nil
}

// teardownSandbox removes the veth (its pod end and the /32 route go with
// it) and the namespace. Missing pieces are not errors.
func (a *Agent) teardownSandbox(sb sandbox) error {
	var errs []error
	if node, err := netlinkAt(a.cfg.Netns); err != nil {
		errs = append(errs, err)
	} else {
		if l, err := node.LinkByName(sb.HostVeth); err == nil {
			if err := node.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", sb.HostVeth, err))
			}
		}
		node.Close()
	}
	if _, err := os.Stat("/run/netns/" + sb.Netns); err == nil {
		if out, err := exec.Command("ip", "netns", "del", sb.Netns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", sb.Netns, err, strings.TrimSpace(string(out))))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pod %s network: %w", sb.Pod, errors.Join(errs...))
	}
	return nil
}
