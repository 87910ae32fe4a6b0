package iptables

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// largeClusterEndpoints is upstream's threshold above which per-endpoint
// comments are left out to keep the ruleset small.
const largeClusterEndpoints = 1000

// renderConfig is everything rendering needs besides the View. Rendering is
// pure: same config and input, same bytes.
type renderConfig struct {
	family        v1.IPFamily
	masqueradeAll bool
	masqMark      string // "0x004000", upstream's %#08x
	localDetect   LocalDetect
	// nodePortIPs are the addresses NodePorts answer on; nil means every
	// local address (-m addrtype --dst-type LOCAL).
	nodePortIPs        []netip.Addr
	nodePortAll        bool
	localhostNodePorts bool
	// conntrackLiberal skips the INVALID drop rule, as upstream does when
	// nf_conntrack_tcp_be_liberal is set.
	conntrackLiberal bool
	// bucketThreshold is the number of Service ports above which
	// KUBE-SERVICES is bucketed (buckets.go); 0 means the default,
	// negative never.
	bucketThreshold int
	// txnLines, when > 0, splits the nat table's restore into transactions
	// of about this many lines (transactions.go); 0 writes one.
	txnLines int
}

// renderInput is one sync's request.
type renderInput struct {
	view *state.View
	// full writes every Service's chains; otherwise only those in changed
	// or whose rendering differs from prevHashes.
	full       bool
	changed    map[state.ServicePortName]struct{}
	prevHashes map[state.ServicePortName]uint64
	// prevTop fingerprints the top-level nat chains and the filter table as
	// last written; a partial sync leaves out what still matches.
	prevTop topHashes
	// existing are the per-Service chains believed to exist now (from
	// iptables-save on a full sync, from our record otherwise); those no
	// longer used are flushed and deleted.
	existing map[string]struct{}
}

// renderOutput is the iptables-restore input and what it leads to.
type renderOutput struct {
	data []byte
	// rules count every rule of the resulting ruleset per table, written
	// this time or not, for kubeproxy_sync_proxy_rules_iptables_total.
	rules map[string]int
	// top fingerprints the top-level nat chains and the filter table.
	top topHashes
	// active are the per-Service nat chains the ruleset has after restore.
	active map[string]struct{}
	hashes map[state.ServicePortName]uint64
	// written names the Services whose chains are in data; deleted the
	// chains removed with -X.
	written []state.ServicePortName
	deleted []string
	skipped []error
}

type renderer struct {
	cfg   renderConfig
	probs []string
	seed  maphash.Seed
	// fullSizes are the last full render's per-Service buffers (natChains,
	// natRules, groups): the next full render starts at those sizes, as
	// growing 30 MB by doubling left 60 MB of garbage at 10,000 x 10.
	fullSizes [3]int
}

func newRenderer(cfg renderConfig) *renderer {
	return &renderer{cfg: cfg, seed: maphash.MakeSeed()}
}

// probability is upstream's 1/n as "%0.10f", cached.
func (r *renderer) probability(n int) string {
	for len(r.probs) <= n {
		r.probs = append(r.probs, fmt.Sprintf("%0.10f", 1.0/float64(max(len(r.probs), 1))))
	}
	return r.probs[n]
}

// syncState is the scratch of one render.
type syncState struct {
	in                      renderInput
	out                     *renderOutput
	det                     Detector
	nodeIPs                 []netip.Addr // this node's addresses of the family
	large                   bool
	filterChains, filterRls lines
	natChains, natRules     lines // per-Service chains and their deletion
	// natTop holds the top-level nat chains (KUBE-SERVICES, KUBE-NODEPORTS,
	// and when bucketed the level-1 bucket chains), which every Service
	// adds to; natMasq the rules of KUBE-POSTROUTING and KUBE-MARK-MASQ.
	natTopChains, natL1Chains, natMasq, natTop lines
	// leaves are the bucket leaf chains' rules when bucketed, else nil.
	leaves              []lines
	svcChains, svcRules lines // one Service's own chains, kept or not
	// groups are the nat transactions of Services' chains in split mode.
	groups, group, groupRules lines
	keptRules                 int
}

func (r *renderer) render(in renderInput) *renderOutput {
	view := in.view
	out := &renderOutput{
		rules: map[string]int{},
		// Sized like last time: growing a 100k-entry map dominates
		// otherwise.
		active: make(map[string]struct{}, len(in.existing)+16),
		hashes: make(map[state.ServicePortName]uint64, len(view.Services)),
	}
	st := &syncState{in: in, out: out, det: newDetector(r.cfg.localDetect, r.cfg.family, &view.Node)}
	if in.full {
		r.growForFull(st, view)
	}
	for _, a := range view.Node.IPs {
		if a, ok := familyAddr(a, r.cfg.family); ok {
			st.nodeIPs = append(st.nodeIPs, a)
		}
	}
	names := make([]state.ServicePortName, 0, len(view.Services))
	total := 0
	for n, sp := range view.Services {
		if sp == nil {
			continue
		}
		names = append(names, n)
		total += len(sp.AllEndpoints)
	}
	st.large = total > largeClusterEndpoints
	if t := r.bucketThreshold(); t >= 0 && len(names) > t {
		st.leaves = make([]lines, bucketLeaves)
	}
	// Sorted so that the output is stable and diffable; upstream's order
	// is a map's.
	slices.SortFunc(names, func(a, b state.ServicePortName) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})

	r.topLevel(st)
	natSkipped := 0
	for _, n := range names {
		s, err := newSvcInfo(view.Services[n], r.cfg.family)
		if err != nil {
			klog.ErrorS(err, "Skipping service port")
			out.skipped = append(out.skipped, err)
			continue
		}
		st.svcChains.reset()
		st.svcRules.reset()
		r.service(st, s)
		h := r.hash(st)
		out.hashes[n] = h
		prev, had := in.prevHashes[n]
		_, listed := in.changed[n]
		if in.full || listed || !had || prev != h {
			r.keepService(st)
			out.written = append(out.written, n)
		} else {
			natSkipped += st.svcRules.n
		}
	}
	r.tail(st)

	leafRules := 0
	for i := range st.leaves {
		leafRules += st.leaves[i].n
	}
	out.top = topHashes{nat: r.fingerprint(&st.natTopChains, &st.natL1Chains, &st.natMasq, &st.natTop),
		filter: r.fingerprint(&st.filterChains, &st.filterRls)}
	// With --noflush a chain left out of the input keeps its rules. An
	// endpoint change rarely alters KUBE-SERVICES, and re-adding its one
	// rule per Service is most of a partial restore on the nft backend.
	writeNATTop := in.full || out.top.nat != in.prevTop.nat
	writeFilter := in.full || out.top.filter != in.prevTop.filter
	// Bucket leaves are fingerprinted one by one: a new Service rewrites
	// its leaf only, not 20,000 dispatch rules.
	var leaves []int
	if st.leaves != nil {
		out.top.leaves = make([]uint64, bucketLeaves)
		for i := range st.leaves {
			out.top.leaves[i] = r.fingerprint(&st.leaves[i])
			if in.full || in.prevTop.leaves == nil || out.top.leaves[i] != in.prevTop.leaves[i] {
				leaves = append(leaves, i)
			}
		}
	}
	r.deleteStale(st)
	out.rules[tableNAT] = st.natMasq.n + st.natTop.n + leafRules + st.keptRules + natSkipped
	out.rules[tableFilter] = st.filterRls.n

	if in.full {
		r.fullSizes = [3]int{st.natChains.buf.Len(), st.natRules.buf.Len(), st.groups.buf.Len()}
	}
	b := make([]byte, 0, st.restoreSize(leaves))
	if writeFilter {
		b = append(b, "*filter\n"...)
		b = append(b, st.filterChains.buf.Bytes()...)
		b = append(b, st.filterRls.buf.Bytes()...)
		b = append(b, "COMMIT\n"...)
	}
	if r.cfg.txnLines > 0 {
		out.data = r.splitNAT(st, b, writeNATTop, leaves)
		return out
	}
	if !writeNATTop && len(leaves) == 0 && st.natChains.buf.Len() == 0 && st.natRules.buf.Len() == 0 {
		// Nothing of nat changed: no empty transaction (splitNAT writes
		// none either), so that a quiet sync runs no restore at all.
		out.data = b
		return out
	}
	b = append(b, "*nat\n"...)
	if writeNATTop {
		b = append(b, st.natTopChains.buf.Bytes()...)
		b = append(b, st.natL1Chains.buf.Bytes()...)
	}
	for _, i := range leaves {
		b = appendChain(b, bucketLeaf(i))
	}
	b = append(b, st.natChains.buf.Bytes()...)
	if writeNATTop {
		b = append(b, st.natMasq.buf.Bytes()...)
		b = append(b, st.natTop.buf.Bytes()...)
	}
	for _, i := range leaves {
		b = append(b, st.leaves[i].buf.Bytes()...)
	}
	b = append(b, st.natRules.buf.Bytes()...)
	b = append(b, "COMMIT\n"...)
	out.data = b
	return out
}

// growForFull sizes the per-Service buffers of a full render: like the
// last full render, or on the first one from the view, at the bytes per
// Service and endpoint measured at 2,000 x 5 and 10,000 x 10 without
// comments (large clusters, where it matters), rounded up.
func (r *renderer) growForFull(st *syncState, view *state.View) {
	sizes := r.fullSizes
	if sizes == [3]int{} {
		services, eps := len(view.Services), 0
		for _, sp := range view.Services {
			if sp != nil {
				eps += len(sp.AllEndpoints)
			}
		}
		chains, rules := 36*(services+eps), 200*services+256*eps
		if r.cfg.txnLines > 0 {
			sizes[2] = chains + rules
		} else {
			sizes[0], sizes[1] = chains, rules
		}
	}
	st.natChains.buf.Grow(sizes[0])
	st.natRules.buf.Grow(sizes[1])
	st.groups.buf.Grow(sizes[2])
}

// restoreSize bounds the restore input the parts add up to, so it is
// allocated once: headers, COMMITs and chain declarations are the slack.
func (st *syncState) restoreSize(leaves []int) int {
	n := 4096 + 96*(len(leaves)+2*len(st.out.deleted))
	for _, l := range []*lines{&st.filterChains, &st.filterRls, &st.natTopChains, &st.natL1Chains,
		&st.natChains, &st.natMasq, &st.natTop, &st.natRules, &st.groups} {
		n += l.buf.Len()
	}
	for _, i := range leaves {
		n += st.leaves[i].buf.Len()
	}
	return n
}

// keepService adds the Service's chains just rendered to the restore.
func (r *renderer) keepService(st *syncState) {
	st.keptRules += st.svcRules.n
	if r.cfg.txnLines <= 0 {
		st.svcChains.appendTo(&st.natChains)
		st.svcRules.appendTo(&st.natRules)
		return
	}
	r.addToGroup(st)
}

// appendChain appends a chain declaration line.
func appendChain(b []byte, name string) []byte {
	b = append(b, ':')
	b = append(b, name...)
	return append(b, " - [0:0]\n"...)
}

// topHashes fingerprints what every sync renders whole, and each bucket
// leaf (nil when not bucketed).
type topHashes struct {
	nat, filter uint64
	leaves      []uint64
}

func (r *renderer) fingerprint(parts ...*lines) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	for _, p := range parts {
		h.Write(p.buf.Bytes())
		h.WriteByte(0)
	}
	return h.Sum64()
}

// hash fingerprints one Service's own chains, so a partial sync also
// rewrites a Service whose rules changed without being listed.
func (r *renderer) hash(st *syncState) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.Write(st.svcChains.buf.Bytes())
	h.WriteByte(0)
	h.Write(st.svcRules.buf.Bytes())
	return h.Sum64()
}

// deleteStale flushes and deletes per-Service chains that exist but are
// no longer used. -X goes after every rule, so nothing refers to them.
func (r *renderer) deleteStale(st *syncState) {
	var stale []string
	for c := range st.in.existing {
		if _, ok := st.out.active[c]; !ok && isServiceChain(c) {
			stale = append(stale, c)
		}
	}
	slices.Sort(stale)
	st.out.deleted = stale
	if r.cfg.txnLines > 0 {
		return // splitNAT deletes them after everything else
	}
	for _, c := range stale {
		st.natChains.chain(c)
		st.natRules.write("-X", c)
	}
}
