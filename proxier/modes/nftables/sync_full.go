package nftables

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// syncFull rewrites the whole table in two transactions, each atomic and
// each leaving a working table: first the skeleton (base and stock chains
// with their rules, map definitions) through nft, then every per-Service
// object through the backend: dispatch maps flushed and refilled, every
// chain added and flushed, chains nobody wants any more flushed (deleted
// later) and affinity sets deleted. This is also what repairs a table
// someone else altered.
func (p *Proxier) syncFull(ctx context.Context, fs *familyState, view *state.View) error {
	start := p.now()
	p.refreshContext(fs, view)
	existingChains, existingSets, listErr := fs.be.owned(ctx)
	if listErr != nil {
		klog.ErrorS(listErr, "Failed to list the nftables table; rewriting it", "ipFamily", view.Family)
	}
	if fs.synced {
		if n := fs.drift(existingChains); n > 0 {
			klog.InfoS("nftables table was altered outside the proxier; rewriting it", "ipFamily", view.Family, "differences", n)
		}
	}

	tx := fs.nft.NewTransaction()
	fs.rc.writeSkeleton(tx, fs.resetBase)
	if err := fs.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables skeleton of table %s: %w", tableName, err)
	}
	fs.resetBase = false
	skeleton := p.now()

	b := fs.be.newBatch(fs.rc, len(view.Services)*batchBytesPerServicePort)
	for _, m := range dispatchMaps {
		b.flushSet(m)
	}
	services := make(map[state.ServicePortName]*svcRecord, len(view.Services))
	chains := make(map[string]chainSum, len(fs.chains))
	elems := make(map[string]*elemState, len(fs.elems))
	byContainer := map[string][]*elemState{}
	affinity := map[string]time.Duration{}
	epMaps := map[string]bool{}
	slotted := map[string]bool{}
	lbByMap := map[string][]*lbSlot{}
	nRules := 0
	for _, name := range sortedNames(view.Services) {
		sp := view.Services[name]
		o, err := fs.rc.renderService(sp)
		if err != nil {
			klog.ErrorS(err, "Skipping service port", "servicePort", name.String())
			continue
		}
		for _, m := range mapsOf(o.lbs) {
			if !epMaps[m] {
				// Emptied and refilled below, like the dispatch maps.
				epMaps[m] = true
				b.addEndpointsMap(m)
				b.flushSet(m)
			}
		}
		for i := range o.lbs {
			slotted[o.lbs[i].chain] = true
			m := o.lbs[i].mapName()
			lbByMap[m] = append(lbByMap[m], &o.lbs[i])
		}
		for _, ch := range o.chains {
			b.addChain(ch.name)
			// Flushing a chain that did not exist is a message for nothing.
			if _, had := existingChains[ch.name]; had || listErr != nil {
				b.flushChain(ch.name)
			}
		}
		for _, a := range o.affinity {
			if old, ok := fs.affinity[a.name]; ok && old != a.timeout {
				// A set's timeout cannot change in place; the chains using
				// it were flushed just above.
				b.deleteSet(a.name)
			}
			b.addAffinitySet(a)
			affinity[a.name] = a.timeout
		}
		for _, ch := range o.chains {
			for _, r := range ch.rules {
				b.addRule(ch.name, r)
			}
			chains[ch.name] = sumRules(ch.rules)
			nRules += len(ch.rules)
		}
		ids := make([]string, len(o.elems))
		for i, e := range o.elems {
			id := e.id()
			ids[i] = id
			if es, ok := elems[id]; ok {
				es.refs++
				continue
			}
			es := &elemState{elem: e, refs: 1}
			elems[id] = es
			byContainer[e.container] = append(byContainer[e.container], es)
		}
		// The rules are in the batch now: only the record stays.
		services[name] = o.record(ids)
	}
	// Elements last, grouped by map: every chain they name exists by now,
	// and one netlink message carries many elements of one map.
	containers := slices.AppendSeq(slices.Collect(maps.Keys(byContainer)), maps.Keys(lbByMap))
	slices.Sort(containers)
	for _, c := range containers {
		for _, es := range byContainer[c] {
			b.addElem(es.elem)
		}
		for _, lb := range lbByMap[c] {
			for _, e := range fs.rc.lbElems(lb) {
				b.addElem(e)
			}
		}
	}

	stale := map[string]time.Time{}
	for name := range existingChains {
		if _, active := chains[name]; active {
			continue
		}
		b.flushChain(name)
		since, ok := fs.stale[name]
		if !ok {
			since = start
		}
		stale[name] = since
		chains[name] = chainSum{}
	}
	for name := range existingSets {
		if _, active := affinity[name]; !active && !epMaps[name] {
			b.deleteSet(name)
		}
	}
	if err := fs.be.run(ctx, b); err != nil {
		return fmt.Errorf("nftables full sync of %d service ports: %w", len(services), err)
	}
	fs.services, fs.chains, fs.elems, fs.affinity, fs.stale = services, chains, elems, affinity, stale
	fs.epMaps = epMaps
	fs.rc.slots.retain(slotted)
	fs.nRules, fs.synced = nRules, true
	klog.V(2).InfoS("nftables full sync done", "ipFamily", view.Family, "servicePorts", len(services),
		"chains", len(chains), "elements", len(elems), "skeleton", skeleton.Sub(start), "elapsed", p.now().Sub(start))
	return nil
}

// batchBytesPerServicePort is what a full sync's netlink batch takes per
// Service port with 10 endpoints (measured: 15.7 MB at 10,000).
const batchBytesPerServicePort = 1700

// drift counts chains that differ between the kernel and our belief: a cheap
// witness that someone else touched the table (rules and elements are
// repaired by the rewrite without being listed, which costs seconds at scale).
func (fs *familyState) drift(existing map[string]bool) int {
	n := 0
	for name := range fs.chains {
		if !existing[name] {
			n++
		}
	}
	for name := range existing {
		if _, ok := fs.chains[name]; !ok {
			n++
		}
	}
	return n
}

func (r rule) object(chain string) *knftables.Rule {
	kr := &knftables.Rule{Chain: chain, Rule: r.text}
	if r.comment != "" {
		kr.Comment = knftables.PtrTo(r.comment)
	}
	return kr
}

func affinityObject(rc *renderCtx, a affinitySet) *knftables.Set {
	// "dynamic" is set up front: some kernels add it themselves, and a later
	// Add without it would then look like a flag change (upstream's note).
	return &knftables.Set{
		Name:    a.name,
		Type:    rc.addrType,
		Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
		Timeout: knftables.PtrTo(a.timeout),
	}
}

func (e elem) object() *knftables.Element {
	ke := &knftables.Element{Key: e.key}
	if e.isSet {
		ke.Set = e.container
	} else {
		ke.Map = e.container
		ke.Value = []string{e.valueText()}
	}
	if e.comment != "" {
		ke.Comment = knftables.PtrTo(e.comment)
	}
	return ke
}
