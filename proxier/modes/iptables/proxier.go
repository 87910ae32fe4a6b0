package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// Options configure the iptables mode (KubeProxyConfiguration's iptables
// section and the common fields it uses).
type Options struct {
	// NetNS is the network namespace to program ("" = the current one).
	NetNS string
	// Family is the IP family of this proxier; IPv4 when empty.
	Family v1.IPFamily
	// Backend picks the iptables binaries: "" as installed, "legacy" or
	// "nft" (iptables-legacy-restore, iptables-nft-restore, ...).
	Backend string
	// MasqueradeAll marks all ClusterIP traffic for SNAT.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit for SNAT (mark 1<<bit); 14 when nil.
	MasqueradeBit *int32
	LocalDetect   LocalDetect
	// NodePortAddresses limit NodePorts to local addresses in these
	// prefixes; empty means every local address.
	NodePortAddresses []netip.Prefix
	// LocalhostNodePorts serves IPv4 NodePorts on 127.0.0.0/8, which
	// needs route_localnet=1 (set by New).
	LocalhostNodePorts bool
	// BucketThreshold is the number of Service ports above which
	// KUBE-SERVICES dispatches through KUBE-SVCB-* bucket chains (see
	// buckets.go): 0 means 1000, negative never.
	BucketThreshold int
	// KeepChains, by table, are chains Cleanup leaves alone (with the jumps
	// to them): another mode on the node owns them now. A migration into
	// ipvs, which writes the same top-level chains, sets them.
	KeepChains map[string][]string

	// Runner, Sysctl and NodeAddresses are seams for tests; nil means the
	// real thing in NetNS.
	Runner        Runner
	Sysctl        Sysctl
	NodeAddresses func(ctx context.Context) ([]netip.Addr, error)
}

// Proxier is the iptables mode.
type Proxier struct {
	opts     Options
	family   v1.IPFamily
	runner   Runner
	r        *renderer
	npMatch  nodePortMatch
	nodeAddr func(ctx context.Context) ([]netip.Addr, error)

	mu sync.Mutex
	// needFull is set until a full sync succeeds, and after any failure:
	// our record of the kernel can no longer be trusted.
	needFull bool
	// chains are the per-Service nat chains the last sync left, hashes
	// the fingerprints of each Service's chains.
	chains map[string]struct{}
	hashes map[state.ServicePortName]uint64
	// top fingerprints the top-level chains as the last sync wrote them.
	top topHashes
	// lastCanary is when the canary chains were last seen.
	lastCanary     time.Time
	canaryInterval time.Duration
	// lastFull is when a full sync last succeeded: a requested one
	// rewrites everything again only after modes.FullSyncPeriod while our
	// record holds; in between it renders every Service and writes what
	// differs, and the canary catches a flushed table.
	lastFull time.Time
	now      func() time.Time
}

var _ modes.Mode = &Proxier{}

// New checks opts and prepares the namespace's sysctls like upstream
// (route_localnet for localhost NodePorts). It writes no rule: the first
// Sync does.
func New(ctx context.Context, opts Options) (*Proxier, error) {
	family := opts.Family
	if family == "" {
		family = v1.IPv4Protocol
	}
	if family != v1.IPv4Protocol && family != v1.IPv6Protocol {
		return nil, fmt.Errorf("iptables mode: unknown IP family %q", family)
	}
	switch opts.Backend {
	case "", "legacy", "nft":
	default:
		return nil, fmt.Errorf("iptables mode: backend %q is not legacy or nft", opts.Backend)
	}
	bit := int32(defaultMasqueradeBit)
	if opts.MasqueradeBit != nil {
		bit = *opts.MasqueradeBit
	}
	if bit < 0 || bit > 31 {
		return nil, fmt.Errorf("iptables mode: masquerade bit %d not in 0..31", bit)
	}
	if err := opts.LocalDetect.validate(); err != nil {
		return nil, fmt.Errorf("iptables mode: %w", err)
	}
	p := &Proxier{opts: opts, family: family, runner: opts.Runner, needFull: true, canaryInterval: 10 * time.Second, now: time.Now}
	if p.runner == nil {
		p.runner = &Exec{NetNS: opts.NetNS, Family: family, Backend: opts.Backend}
	}
	sysctl := opts.Sysctl
	if sysctl == nil {
		sysctl = ExecSysctl{NetNS: opts.NetNS}
	}
	p.npMatch = newNodePortMatch(opts.NodePortAddresses, family)
	p.nodeAddr = opts.NodeAddresses
	if p.nodeAddr == nil {
		p.nodeAddr = func(context.Context) ([]netip.Addr, error) { return linkAddresses(opts.NetNS, family) }
	}
	// As upstream: localhost NodePorts only when loopback is among the
	// NodePort addresses, and only for IPv4.
	localhost := opts.LocalhostNodePorts && p.npMatch.containsLoopback4 && family == v1.IPv4Protocol
	if localhost {
		klog.InfoS("Setting route_localnet=1 to allow NodePorts on localhost", "netns", opts.NetNS)
		if err := sysctl.Set(ctx, sysctlRouteLocalnet, "1"); err != nil {
			return nil, fmt.Errorf("iptables mode: localhost NodePorts: %w", err)
		}
	}
	liberal := false
	if v, err := sysctl.Get(ctx, sysctlConntrackLiberal); err == nil && v != "0" {
		liberal = true
		klog.InfoS("nf_conntrack_tcp_be_liberal set, not installing DROP rules for INVALID packets")
	}
	p.r = newRenderer(renderConfig{
		family:             family,
		masqueradeAll:      opts.MasqueradeAll,
		masqMark:           fmt.Sprintf("%#08x", uint32(1)<<bit),
		localDetect:        opts.LocalDetect,
		nodePortAll:        p.npMatch.all,
		localhostNodePorts: localhost,
		conntrackLiberal:   liberal,
		bucketThreshold:    opts.BucketThreshold,
	})
	if e, ok := p.runner.(*Exec); ok && e.isNFT(ctx) {
		p.r.cfg.txnLines = defaultTxnLines
	}
	return p, nil
}

// Name is the mode as in the config.
func (p *Proxier) Name() string { return "iptables" }

// Sync renders view and applies it with one iptables-restore. A full sync
// (asked for, first, after a failure, or when the canary chains are gone)
// ensures the jump rules and deletes stale chains found by iptables-save;
// otherwise only changed Services' chains are written.
func (p *Proxier) Sync(ctx context.Context, view *state.View, changes *state.Changes) (modes.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if view == nil {
		return modes.Result{}, fmt.Errorf("iptables sync: no view")
	}
	if view.Family != "" && view.Family != p.family {
		return modes.Result{}, fmt.Errorf("iptables sync: view is %s, proxier is %s", view.Family, p.family)
	}
	full := p.needFull || changes == nil || changes.Full
	if full && !p.needFull && changes != nil && p.now().Sub(p.lastFull) < modes.FullSyncPeriod {
		full = false
	}
	if !full && p.canaryGone(ctx) {
		klog.InfoS("iptables canary chain gone; rules were flushed by someone else, resyncing all")
		full = true
	}
	in := renderInput{view: view, full: full, existing: p.chains}
	if changes != nil {
		in.changed = changes.Services
	}
	if full {
		saved, err := p.ensureJumps(ctx)
		if err != nil {
			p.needFull = true
			return modes.Result{Full: true}, fmt.Errorf("iptables sync: %w", err)
		}
		if nat := saved[tableNAT]; nat == nil {
			klog.ErrorS(nil, "iptables-save of nat failed: stale chains are not deleted this time")
		} else {
			in.existing = existingServiceChains(nat)
		}
	} else {
		in.prevHashes = p.hashes
		in.prevTop = p.top
	}
	if !p.npMatch.all {
		addrs, err := p.nodeAddr(ctx)
		if err != nil {
			klog.ErrorS(err, "Failed to list local addresses; NodePorts may not work", "cidrs", p.opts.NodePortAddresses)
		}
		p.r.cfg.nodePortIPs = p.npMatch.filter(addrs)
	}
	out := p.r.render(in)
	res := modes.Result{Full: full, Rules: out.rules}
	// A partial sync with nothing to write (the periodic sync of a quiet
	// node) runs no iptables-restore: in the kernel VM under load one
	// cost 1-2 s of its single vCPU every syncPeriod, for nothing.
	if len(out.data) > 0 {
		if err := p.runner.Restore(ctx, out.data, RestoreFlags{Counters: true}); err != nil {
			p.needFull = true
			return res, fmt.Errorf("iptables sync (full=%v, %d services written): %w", full, len(out.written), err)
		}
	}
	p.needFull = false
	if full {
		p.lastFull = p.now()
	}
	p.chains = out.active
	p.hashes = out.hashes
	p.top = out.top
	klog.V(2).InfoS("iptables rules synced", "full", full, "services", len(view.Services),
		"written", len(out.written), "deletedChains", len(out.deleted), "natRules", out.rules[tableNAT],
		"filterRules", out.rules[tableFilter], "bytes", len(out.data))
	return res, nil
}

// canaryGone checks, at most every canaryInterval, that the empty canary
// chains still exist; a flushed table loses them, and then our record of
// the kernel is wrong.
func (p *Proxier) canaryGone(ctx context.Context) bool {
	if p.now().Sub(p.lastCanary) < p.canaryInterval {
		return false
	}
	for _, t := range []string{tableMangle, tableNAT} {
		ok, err := p.runner.ChainExists(ctx, t, chainCanary)
		if err != nil {
			klog.ErrorS(err, "Checking the canary chain", "table", t)
			return true
		}
		if !ok {
			return true
		}
	}
	p.lastCanary = p.now()
	return false
}

// existingServiceChains are the per-Service chains of nat in its
// iptables-save output: ours, stale ones, and those upstream kube-proxy
// left.
func existingServiceChains(nat []byte) map[string]struct{} {
	out := map[string]struct{}{}
	for _, c := range chainsIn(nat) {
		if isServiceChain(c) {
			out[c] = struct{}{}
		}
	}
	return out
}

// chainsIn lists the chains declared in iptables-save output.
func chainsIn(save []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			if f := strings.Fields(line[1:]); len(f) > 0 {
				out = append(out, f[0])
			}
		}
	}
	return out
}
