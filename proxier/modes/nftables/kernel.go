package nftables

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Why nft -f (knftables) and not netlink: measured on this machine (kernel
// 6.18, nft 1.0.6) in a scratch namespace, one "add element" to service-ips
// costs ~5 ms on an empty table but 150-200 ms with 10,000 services x 2
// endpoints and 1.6-2.3 s with 10,000 x 10, because every nft invocation
// first dumps the table's chains and sets into its cache. A netlink message
// carries no such cost, so google/nftables would be two orders of magnitude
// faster for the one-endpoint path at scale; it needs every rule shape here
// re-expressed as netlink expressions, which is not done yet (see README).

// openKernel opens the real nft for one family in namespace ns, after the
// preflight: knftables.New checks nft >= 1.0.1 and that we may write
// tables; checkFeatures asks the kernel (nft -c) for every feature we use.
func openKernel(ctx context.Context, ns string, f v1.IPFamily) (knftables.Interface, error) {
	fam := knftables.IPv4Family
	if f == v1.IPv6Protocol {
		fam = knftables.IPv6Family
	}
	var nft knftables.Interface
	err := netns.Do(ns, func() error {
		var err error
		nft, err = knftables.New(fam, tableName)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nftables mode unavailable (netns %q): %w", ns, err)
	}
	if ns != "" {
		nft = &nsNFT{ns: ns, inner: nft}
	}
	if err := checkFeatures(ctx, nft, f); err != nil {
		return nil, fmt.Errorf("nftables mode unavailable (netns %q): kernel or nft lacks a feature the ruleset uses: %w", ns, err)
	}
	return nft, nil
}

// checkFeatures dry-runs a small table using every construct of the ruleset.
func checkFeatures(ctx context.Context, nft knftables.Interface, f v1.IPFamily) error {
	rc := newRenderCtx(f)
	rc.mark = "0x004000"
	rc.setLocalDetect([]netip.Prefix{netip.MustParsePrefix(map[bool]string{true: "fd00::/8", false: "10.0.0.0/8"}[f == v1.IPv6Protocol])})
	tx := nft.NewTransaction()
	rc.writeSkeleton(tx, false)
	tx.Add(affinityObject(rc, affinitySet{name: "affinity-preflight/x", timeout: 10 * time.Second}))
	for _, ch := range []chainSpec{
		{name: "endpoint-preflight/x", rules: []rule{
			{text: rc.ipX + " saddr @affinity-preflight/x goto endpoint-preflight/y"},
			{text: "update @affinity-preflight/x { " + rc.ipX + " saddr }"},
			{text: "numgen random mod 1 vmap { 0 : goto endpoint-preflight/y }"},
			{text: "fib saddr type local jump " + markMasqChain},
			{text: rc.ifLocal + " goto endpoint-preflight/y"},
		}},
	} {
		tx.Add(&knftables.Chain{Name: "endpoint-preflight/y"})
		tx.Add(&knftables.Rule{Chain: "endpoint-preflight/y", Rule: "meta l4proto tcp dnat to " + map[bool]string{true: "[fd00::1]:80", false: "10.0.0.1:80"}[f == v1.IPv6Protocol]})
		tx.Add(&knftables.Chain{Name: ch.name})
		addRules(tx, ch)
	}
	return nft.Check(ctx, tx)
}

// nsNFT runs every nft call from a thread inside namespace ns: knftables
// forks nft from the calling thread, so the child inherits the namespace.
type nsNFT struct {
	ns    string
	inner knftables.Interface
}

var _ knftables.Interface = &nsNFT{}

func (n *nsNFT) NewTransaction() *knftables.Transaction { return n.inner.NewTransaction() }

func (n *nsNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	return netns.Do(n.ns, func() error { return n.inner.Run(ctx, tx) })
}

func (n *nsNFT) Check(ctx context.Context, tx *knftables.Transaction) error {
	return netns.Do(n.ns, func() error { return n.inner.Check(ctx, tx) })
}

func (n *nsNFT) ListAll(ctx context.Context) (out map[string][]string, err error) {
	err = netns.Do(n.ns, func() error { out, err = n.inner.ListAll(ctx); return err })
	return out, err
}

func (n *nsNFT) List(ctx context.Context, objectType string) (out []string, err error) {
	err = netns.Do(n.ns, func() error { out, err = n.inner.List(ctx, objectType); return err })
	return out, err
}

func (n *nsNFT) ListRules(ctx context.Context, chain string) (out []*knftables.Rule, err error) {
	err = netns.Do(n.ns, func() error { out, err = n.inner.ListRules(ctx, chain); return err })
	return out, err
}

func (n *nsNFT) ListElements(ctx context.Context, objectType, name string) (out []*knftables.Element, err error) {
	err = netns.Do(n.ns, func() error { out, err = n.inner.ListElements(ctx, objectType, name); return err })
	return out, err
}

func (n *nsNFT) ListCounters(ctx context.Context) (out []*knftables.Counter, err error) {
	err = netns.Do(n.ns, func() error { out, err = n.inner.ListCounters(ctx); return err })
	return out, err
}

// localAddrs lists the addresses of the interfaces in NetNS.
func (p *Proxier) localAddrs() ([]netip.Addr, error) {
	if p.opts.LocalAddrs != nil {
		return p.opts.LocalAddrs()
	}
	var out []netip.Addr
	err := netns.Do(p.opts.NetNS, func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("list interface addresses: %w", err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					out = append(out, ip.Unmap())
				}
			}
		}
		return nil
	})
	return out, err
}
