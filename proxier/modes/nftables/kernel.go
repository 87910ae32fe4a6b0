package nftables

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"k8s.io/apimachinery/pkg/types"

	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// Why per-Service objects go over netlink (netlink.go) and only the
// skeleton through nft -f (knftables): every nft invocation first dumps the
// table's chains and sets into its cache, so its cost grows with the table
// whatever the change; a netlink batch costs what it carries.
// BenchmarkKernelSync measures both (its "nft" variants); the figures are
// in the README.

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

// checkFeatures dry-runs the skeleton plus one Service using every
// per-Service construct (affinity, NodePort, externalTrafficPolicy Local,
// source ranges) through nft -c. Its addresses (0.0.0.0/8, 100::/64) and
// ports are no real Service's, so the check cannot collide with the
// elements of a table already there (Cleanup opens a fresh connection).
func checkFeatures(ctx context.Context, nft knftables.Interface, f v1.IPFamily) error {
	rc := newRenderCtx(f)
	rc.mark = "0x004000"
	v6 := f == v1.IPv6Protocol
	pick := func(v4, v6addr string) string {
		if v6 {
			return v6addr
		}
		return v4
	}
	rc.setLocalDetect([]netip.Prefix{netip.MustParsePrefix(pick("10.0.0.0/8", "fd00::/8"))})
	tx := nft.NewTransaction()
	rc.writeSkeleton(tx, false)
	ep := state.Endpoint{IP: netip.MustParseAddr(pick("0.0.0.3", "100::3")), Port: 80, Ready: true, IsLocal: true}
	sp := &state.ServicePort{
		Name:     state.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "preflight", Name: "x"}, Protocol: v1.ProtocolTCP},
		Protocol: v1.ProtocolTCP, ClusterIP: netip.MustParseAddr(pick("0.0.0.1", "100::1")), Port: 1, NodePort: 1,
		LoadBalancerIPs:          []netip.Addr{netip.MustParseAddr(pick("0.0.0.2", "100::2"))},
		LoadBalancerSourceRanges: []netip.Prefix{netip.MustParsePrefix(pick("198.51.100.0/24", "fd03::/64"))},
		ExternalPolicyLocal:      true, SessionAffinity: true, StickySeconds: 10,
		HasEndpoints: true,
	}
	remote := ep
	remote.IP, remote.IsLocal = netip.MustParseAddr(pick("0.0.0.4", "100::4")), false
	sp.ClusterEndpoints = []state.Endpoint{ep, remote}
	sp.LocalEndpoints = []state.Endpoint{ep}
	sp.AllEndpoints = sp.ClusterEndpoints
	o, err := rc.renderService(sp)
	if err != nil {
		return fmt.Errorf("render the preflight service: %w", err)
	}
	w := &nftWriter{tx: tx, rc: rc}
	for _, a := range o.affinity {
		w.addAffinitySet(a)
	}
	for _, ch := range o.chains {
		w.addChain(ch.name)
	}
	for _, ch := range o.chains {
		for _, r := range ch.rules {
			w.addRule(ch.name, r)
		}
	}
	for _, e := range o.elems {
		w.addElem(e)
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
