package nftables

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// staleChainDelay is how long a flushed per-service chain waits before it is
// deleted: kernels before 6.2 notice only later that a deleted map element no
// longer references it, so an immediate delete can fail with EBUSY (upstream).
const staleChainDelay = time.Second

// Proxier is the nftables mode. It remembers what it wrote per Service so a
// partial sync sends only the difference.
type Proxier struct {
	opts Options

	mu   sync.Mutex
	fams map[v1.IPFamily]*familyState
	now  func() time.Time
	// viaNFT sends per-Service objects through nft instead of netlink (the
	// benchmark's comparison; kernel.go says why netlink is the default).
	viaNFT bool
}

var _ modes.Mode = &Proxier{}

// familyState is the table of one IP family and what we believe is in it.
type familyState struct {
	nft       knftables.Interface // the skeleton
	be        backend             // per-Service objects
	rc        *renderCtx
	synced    bool // a full sync succeeded and beliefs match the kernel
	resetBase bool // next full sync re-creates the base chains
	services  map[state.ServicePortName]*svcRecord
	chains    map[string]chainSum // per-service chains in the kernel; stale ones are empty
	elems     map[string]*elemState
	affinity  map[string]time.Duration
	epMaps    map[string]bool // endpoints maps in the kernel
	stale     map[string]time.Time
	nRules    int
	// lastFull is when a full sync last succeeded; gen is the ruleset
	// generation after our last commit (genOK: the backend could tell).
	lastFull time.Time
	gen      uint32
	genOK    bool
}

type elemState struct {
	elem
	refs int // ServicePorts wanting it (several ports share one ClusterIP)
}

// New checks the options and, unless opts.NFT is given, that nft works in
// opts.NetNS (see kernel.go). Tables are opened per family on first Sync.
func New(opts Options) (*Proxier, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Proxier{opts: opts, fams: map[v1.IPFamily]*familyState{}, now: time.Now}, nil
}

// Preflight opens the IPv4 table's kernel connection now, running the nft
// version and feature checks, so a node that cannot run this mode fails at
// start with the reason instead of at its first sync.
func (p *Proxier) Preflight(ctx context.Context) error {
	_, err := p.family(ctx, v1.IPv4Protocol)
	return err
}

// Name is the mode as in the config.
func (p *Proxier) Name() string { return "nftables" }

func (p *Proxier) family(ctx context.Context, f v1.IPFamily) (*familyState, error) {
	if fs, ok := p.fams[f]; ok {
		return fs, nil
	}
	nft := p.opts.NFT
	var be backend = &nftBackend{nft: nft}
	if nft == nil {
		var err error
		if nft, err = openKernel(ctx, p.opts.NetNS, f); err != nil {
			return nil, err
		}
		be = &nftBackend{nft: nft}
		if !p.viaNFT {
			conn, err := openNL(p.opts.NetNS)
			if err != nil {
				return nil, fmt.Errorf("nftables mode unavailable: %w", err)
			}
			be = newNLBackend(conn, f)
		}
	}
	fs := &familyState{nft: nft, be: be, rc: newRenderCtx(f), resetBase: true}
	fs.reset()
	p.fams[f] = fs
	return fs, nil
}

func (fs *familyState) reset() {
	fs.services = map[state.ServicePortName]*svcRecord{}
	fs.chains = map[string]chainSum{}
	fs.elems = map[string]*elemState{}
	fs.affinity = map[string]time.Duration{}
	fs.epMaps = map[string]bool{}
	fs.stale = map[string]time.Time{}
	fs.nRules = 0
	fs.synced = false
}

// Sync writes the whole table when changes.Full (or after a failure), else
// only the listed ServicePorts, each time in one nft transaction.
func (p *Proxier) Sync(ctx context.Context, view *state.View, changes *state.Changes) (modes.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if view == nil {
		return modes.Result{}, fmt.Errorf("nftables: nil view")
	}
	if changes == nil {
		changes = &state.Changes{Full: true}
	}
	fs, err := p.family(ctx, view.Family)
	if err != nil {
		return modes.Result{}, err
	}
	full := changes.Full || !fs.synced
	if full && fs.synced && !p.fullDue(fs, view) {
		// The periodic resync of a table nobody touched: write only
		// what changed, as upstream does between its hourly full syncs.
		full = false
	}
	if err := p.deleteStaleChains(ctx, fs); err != nil {
		klog.ErrorS(err, "Unable to delete stale nftables chains; rewriting the table", "ipFamily", view.Family)
		full = true
	}
	if full {
		err = p.syncFull(ctx, fs, view)
	} else {
		err = p.syncPartial(ctx, fs, view, changes)
	}
	if err != nil {
		fs.synced = false
		return modes.Result{Full: full}, err
	}
	if full {
		fs.lastFull = p.now()
	}
	fs.gen, fs.genOK = fs.be.generation()
	return modes.Result{Full: full, Rules: fs.counts()}, nil
}

// fullDue says whether a full sync that was asked for (the periodic
// resync, a node change) must really rewrite the table: an hour since the
// last one, any commit since ours (the ruleset generation moved: someone
// else wrote, maybe to our table), or a change in what the skeleton is
// made of (node addresses, pod CIDRs, NodePort addresses).
func (p *Proxier) fullDue(fs *familyState, view *state.View) bool {
	if p.now().Sub(fs.lastFull) >= modes.FullSyncPeriod {
		return true
	}
	gen, ok := fs.be.generation()
	if !ok || !fs.genOK || gen != fs.gen {
		return true
	}
	return !fs.rc.sameSetup(p.newContext(fs, view))
}

// counts are for kubeproxy_sync_proxy_rules_nftables_* style metrics.
func (fs *familyState) counts() map[string]int {
	// Elements without references are dropped at commit, so every one left
	// is in the kernel (counting them one by one cost ms per sync at scale).
	return map[string]int{
		"chains":   len(baseChains) + len(stockChains) + len(fs.chains),
		"rules":    len(jumpChains) + stockRuleCount(fs.rc) + fs.nRules,
		"elements": len(fs.elems),
		"sets":     len(fs.affinity),
	}
}

func stockRuleCount(rc *renderCtx) int {
	if rc.nStock == 0 {
		tx := knftables.NewFake(knftables.IPv4Family, tableName).NewTransaction()
		rc.writeStockRules(tx)
		rc.nStock = tx.NumOperations()
	}
	return rc.nStock
}

// deleteStaleChains deletes chains flushed at least staleChainDelay ago, in
// a transaction of its own as upstream does, so a failure here never blocks
// the sync itself.
func (p *Proxier) deleteStaleChains(ctx context.Context, fs *familyState) error {
	if len(fs.stale) == 0 {
		return nil
	}
	cutoff := p.now().Add(-staleChainDelay)
	b := fs.be.newBatch(fs.rc, 0)
	var gone []string
	for name, since := range fs.stale {
		if since.Before(cutoff) || since.Equal(cutoff) {
			b.deleteChain(name)
			gone = append(gone, name)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := fs.be.run(ctx, b); err != nil {
		clear(fs.stale)
		return fmt.Errorf("delete %d stale chains: %w", len(gone), err)
	}
	for _, name := range gone {
		delete(fs.stale, name)
		delete(fs.chains, name)
	}
	klog.V(2).InfoS("Deleted stale nftables chains", "count", len(gone))
	return nil
}

// refreshContext recomputes what depends on the node and the options.
func (p *Proxier) refreshContext(fs *familyState, view *state.View) {
	fs.rc = p.newContext(fs, view)
}

// newContext is the render context view and the options call for; it
// shares fs's endpoints-map slots.
func (p *Proxier) newContext(fs *familyState, view *state.View) *renderCtx {
	rc := newRenderCtx(view.Family)
	rc.slots = fs.rc.slots
	rc.mark = p.opts.masqueradeMark()
	rc.masqAll = p.opts.MasqueradeAll
	for _, ip := range view.Node.IPs {
		if rc.inFamily(ip) {
			rc.nodeIPs = append(rc.nodeIPs, ip)
		}
	}
	switch p.opts.LocalDetect.Mode {
	case DetectLocalClusterCIDR:
		rc.setLocalDetect(p.opts.LocalDetect.ClusterCIDRs)
	case DetectLocalNodeCIDR:
		rc.setLocalDetect(view.Node.PodCIDRs)
	}
	if len(p.opts.NodePortAddresses) > 0 {
		rc.nodePortAll = false
		rc.nodePortIPs = p.nodePortIPs(rc)
	}
	return rc
}

// nodePortIPs are the local addresses inside NodePortAddresses; localhost
// never serves NodePorts (as upstream).
func (p *Proxier) nodePortIPs(rc *renderCtx) []string {
	addrs, err := p.localAddrs()
	if err != nil {
		klog.ErrorS(err, "Failed to list local addresses; NodePorts may not work", "netns", p.opts.NetNS)
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range addrs {
		a = a.Unmap()
		if !rc.inFamily(a) || a.IsLoopback() || seen[a.String()] {
			continue
		}
		for _, pfx := range p.opts.NodePortAddresses {
			if pfx.Contains(a) {
				seen[a.String()] = true
				out = append(out, a.String())
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// sortedNames gives deterministic transactions (and golden files).
func sortedNames[T any](m map[state.ServicePortName]T) []state.ServicePortName {
	names := make([]state.ServicePortName, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Protocol < b.Protocol
	})
	return names
}
