package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Sysctl reads and writes kernel settings in the proxier's namespace; a
// seam so unit tests do not touch the host.
type Sysctl interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
}

// ExecSysctl runs sysctl(8) in network namespace NetNS, where the net.*
// keys are the namespace's own.
type ExecSysctl struct{ NetNS string }

func (s ExecSysctl) Get(ctx context.Context, key string) (string, error) {
	cmd := netns.Cmd(s.NetNS, "sysctl", "-n", key)
	out, err := run(ctx, cmd)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func (s ExecSysctl) Set(ctx context.Context, key, value string) error {
	cmd := netns.Cmd(s.NetNS, "sysctl", "-q", "-w", key+"="+value)
	if out, err := run(ctx, cmd); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// FakeSysctl is an in-memory Sysctl.
type FakeSysctl map[string]string

func (f FakeSysctl) Get(_ context.Context, key string) (string, error) {
	v, ok := f[key]
	if !ok {
		return "", fmt.Errorf("sysctl %s: no such key", key)
	}
	return v, nil
}

func (f FakeSysctl) Set(_ context.Context, key, value string) error {
	f[key] = value
	return nil
}

const (
	sysctlRouteLocalnet    = "net.ipv4.conf.all.route_localnet"
	sysctlConntrackLiberal = "net.netfilter.nf_conntrack_tcp_be_liberal"
	defaultMasqueradeBit   = 14
)

// linkAddresses lists the addresses of every interface in namespace ns,
// for nodePortAddresses that are not "all".
func linkAddresses(ns string, family v1.IPFamily) ([]netip.Addr, error) {
	h, err := netns.Handle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	// Route family only: netlink.NewHandleAt without families also opens
	// xfrm, which a kernel without xfrm_user (the kernel VM) refuses.
	nl, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in namespace %q: %w", ns, err)
	}
	defer nl.Close()
	fam := netlink.FAMILY_V4
	if family == v1.IPv6Protocol {
		fam = netlink.FAMILY_V6
	}
	addrs, err := nl.AddrList(nil, fam)
	if err != nil {
		return nil, fmt.Errorf("list addresses in namespace %q: %w", ns, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// nodePortMatch is upstream's NodePortAddresses: the prefixes of the
// family; none, or a zero prefix, means every local address.
type nodePortMatch struct {
	all               bool
	prefixes          []netip.Prefix
	containsLoopback4 bool
}

func newNodePortMatch(prefixes []netip.Prefix, family v1.IPFamily) nodePortMatch {
	var m nodePortMatch
	for _, p := range prefixes {
		if !p.IsValid() || !inFamily(p.Addr().Unmap(), family) {
			continue
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
		if p.Bits() == 0 {
			return nodePortMatch{all: true, containsLoopback4: family == v1.IPv4Protocol}
		}
		if family == v1.IPv4Protocol && (p.Addr().IsLoopback() || p.Contains(netip.AddrFrom4([4]byte{127, 0, 0, 1}))) {
			m.containsLoopback4 = true
		}
		m.prefixes = append(m.prefixes, p)
	}
	if len(m.prefixes) == 0 {
		return nodePortMatch{all: true, containsLoopback4: family == v1.IPv4Protocol}
	}
	return m
}

// filter keeps the addresses inside one of the prefixes, in order.
func (m nodePortMatch) filter(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		for _, p := range m.prefixes {
			if p.Contains(a) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}
