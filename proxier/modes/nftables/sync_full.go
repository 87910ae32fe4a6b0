package nftables

import (
	"context"
	"fmt"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// syncFull rewrites the whole table in one transaction: every chain is
// added and flushed, every dispatch map flushed and refilled, and chains or
// affinity sets nobody wants any more are flushed (deleted later) or deleted.
// This is also what repairs a table someone else altered.
func (p *Proxier) syncFull(ctx context.Context, fs *familyState, view *state.View) error {
	start := p.now()
	p.refreshContext(fs, view)
	existingChains, existingSets := listOwned(ctx, fs.nft)
	if fs.synced {
		if n := fs.drift(existingChains); n > 0 {
			klog.InfoS("nftables table was altered outside the proxier; rewriting it", "ipFamily", view.Family, "differences", n)
		}
	}

	tx := fs.nft.NewTransaction()
	fs.rc.writeSkeleton(tx, fs.resetBase)

	services := map[state.ServicePortName]*svcObjects{}
	chains := map[string][]rule{}
	elems := map[string]*elemState{}
	affinity := map[string]time.Duration{}
	nRules := 0
	for _, name := range sortedNames(view.Services) {
		sp := view.Services[name]
		o, err := fs.rc.renderService(sp)
		if err != nil {
			klog.ErrorS(err, "Skipping service port", "servicePort", name.String())
			continue
		}
		services[name] = o
		for _, ch := range o.chains {
			tx.Add(&knftables.Chain{Name: ch.name})
			tx.Flush(&knftables.Chain{Name: ch.name})
		}
		for _, a := range o.affinity {
			if old, ok := fs.affinity[a.name]; ok && old != a.timeout {
				// A set's timeout cannot change in place; the chains using
				// it were flushed just above.
				tx.Delete(&knftables.Set{Name: a.name})
			}
			tx.Add(affinityObject(fs.rc, a))
			affinity[a.name] = a.timeout
		}
		for _, ch := range o.chains {
			addRules(tx, ch)
			chains[ch.name] = ch.rules
			nRules += len(ch.rules)
		}
		for _, e := range o.elems {
			if es, ok := elems[e.id()]; ok {
				es.refs++
				continue
			}
			elems[e.id()] = &elemState{elem: e, refs: 1}
			tx.Add(e.object())
		}
	}

	stale := map[string]time.Time{}
	for name := range existingChains {
		if _, active := chains[name]; active {
			continue
		}
		tx.Flush(&knftables.Chain{Name: name})
		since, ok := fs.stale[name]
		if !ok {
			since = start
		}
		stale[name] = since
		chains[name] = nil
	}
	for name := range existingSets {
		if _, active := affinity[name]; !active {
			tx.Delete(&knftables.Set{Name: name})
		}
	}
	if err := fs.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables full sync of %d service ports: %w", len(services), err)
	}
	fs.services, fs.chains, fs.elems, fs.affinity, fs.stale = services, chains, elems, affinity, stale
	fs.nRules, fs.synced, fs.resetBase = nRules, true, false
	klog.V(2).InfoS("nftables full sync done", "ipFamily", view.Family, "servicePorts", len(services),
		"chains", len(chains), "elements", len(elems), "elapsed", p.now().Sub(start))
	return nil
}

// listOwned lists the per-service chains and affinity sets in the kernel.
// A failure (e.g. no table yet) yields empty sets: the add+flush of the
// transaction still rebuilds everything.
func listOwned(ctx context.Context, nft knftables.Interface) (chains, sets map[string]bool) {
	chains, sets = map[string]bool{}, map[string]bool{}
	if names, err := nft.List(ctx, "chains"); err == nil {
		for _, n := range names {
			if isServiceChainName(n) {
				chains[n] = true
			}
		}
	} else if !knftables.IsNotFound(err) {
		klog.ErrorS(err, "Failed to list nftables chains")
	}
	if names, err := nft.List(ctx, "sets"); err == nil {
		for _, n := range names {
			if isAffinitySetName(n) {
				sets[n] = true
			}
		}
	} else if !knftables.IsNotFound(err) {
		klog.ErrorS(err, "Failed to list nftables sets")
	}
	return chains, sets
}

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

func addRules(tx *knftables.Transaction, ch chainSpec) {
	for _, r := range ch.rules {
		tx.Add(r.object(ch.name))
	}
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
		ke.Value = []string{e.value}
	}
	if e.comment != "" {
		ke.Comment = knftables.PtrTo(e.comment)
	}
	return ke
}
