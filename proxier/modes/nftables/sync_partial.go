package nftables

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// partial collects one partial sync: the transaction plus the beliefs it
// will make true, applied only when the kernel accepted it.
type partial struct {
	fs       *familyState
	now      time.Time
	services map[state.ServicePortName]*svcRecord // nil value = removed
	chains   map[string]chainSum                  // no rules = flushed (stale)
	elems    map[string]*elemState
	affinity map[string]*time.Duration // nil = deleted
	maps     map[string]bool           // endpoints maps created
	released []string                  // chains whose slot goes at commit
	// the transaction in phases, so objects exist before their references
	// and references are gone before their objects are deleted.
	chainsCreate, setsAdd, chainsWrite, elemsDel, elemsAdd, chainsFlush, setsDel phase
}

// phase is an ordered list of operations, replayed into the one transaction.
type phase []func(batch)

func (ph *phase) add(op func(batch)) { *ph = append(*ph, op) }

// syncPartial rewrites only the changed ServicePorts: their map elements and
// the chains whose rules differ from what the kernel holds, in one
// transaction. Unchanged endpoint chains are not touched.
func (p *Proxier) syncPartial(ctx context.Context, fs *familyState, view *state.View, changes *state.Changes) error {
	pl := &partial{fs: fs, now: p.now(), services: map[state.ServicePortName]*svcRecord{},
		chains: map[string]chainSum{}, elems: map[string]*elemState{}, affinity: map[string]*time.Duration{},
		maps: map[string]bool{}}
	for _, name := range sortedNames(changes.Services) {
		var next *svcObjects
		if sp := view.Services[name]; sp != nil {
			o, err := fs.rc.renderService(sp)
			if err != nil {
				klog.ErrorS(err, "Skipping service port", "servicePort", name.String())
			} else {
				next = o
			}
		}
		pl.replace(name, fs.services[name], next)
	}
	pl.diffElems()

	b := fs.be.newBatch(fs.rc, 0)
	for _, ph := range []phase{pl.chainsCreate, pl.setsAdd, pl.chainsWrite, pl.elemsDel, pl.elemsAdd, pl.chainsFlush, pl.setsDel} {
		for _, op := range ph {
			op(b)
		}
	}
	if b.size() == 0 {
		pl.commit() // reference counts may have moved
		return nil
	}
	if err := fs.be.run(ctx, b); err != nil {
		return fmt.Errorf("nftables partial sync of %d service ports: %w", len(changes.Services), err)
	}
	pl.commit()
	return nil
}

// replace plans the move of one ServicePort from old to next objects.
func (pl *partial) replace(name state.ServicePortName, old *svcRecord, next *svcObjects) {
	pl.services[name] = nil
	fs := pl.fs
	// Affinity sets whose timeout changed must be recreated, which needs
	// every chain using them flushed first: rewrite all chains then.
	force := false
	wantSets := map[string]time.Duration{}
	if next != nil {
		for _, a := range next.affinity {
			wantSets[a.name] = a.timeout
			cur, ok := fs.affinity[a.name]
			if ok && cur != a.timeout {
				force = true
			}
		}
	}
	wantChains := map[string]bool{}
	if next != nil {
		for _, ch := range next.chains {
			wantChains[ch.name] = true
		}
	}
	if force && old != nil {
		for _, name := range old.chains {
			pl.setsAdd.add(func(b batch) { b.flushChain(name) })
		}
	}
	if next != nil {
		for _, m := range mapsOf(next.lbs) {
			if !fs.epMaps[m] && !pl.maps[m] {
				pl.maps[m] = true
				pl.setsAdd.add(func(b batch) { b.addEndpointsMap(m) })
			}
		}
		for _, a := range next.affinity {
			cur, ok := fs.affinity[a.name]
			switch {
			case !ok:
				pl.setsAdd.add(func(b batch) { b.addAffinitySet(a) })
			case cur != a.timeout:
				pl.setsAdd.add(func(b batch) { b.deleteSet(a.name); b.addAffinitySet(a) })
			}
			pl.affinity[a.name] = &a.timeout
		}
		for _, ch := range next.chains {
			pl.writeChain(ch, force)
		}
	}
	if old != nil {
		for _, name := range old.chains {
			if !wantChains[name] {
				pl.chainsFlush.add(func(b batch) { b.flushChain(name) })
				pl.chains[name] = chainSum{}
			}
		}
		for _, a := range old.affinity {
			if _, keep := wantSets[a.name]; !keep {
				name := a.name
				pl.setsDel.add(func(b batch) { b.deleteSet(name) })
				pl.affinity[a.name] = nil
			}
		}
		for _, id := range old.elemIDs {
			pl.elem(id).refs--
		}
	}
	var oldLBs, nextLBs []lbSlot
	if old != nil {
		oldLBs = old.lbs
	}
	if next != nil {
		nextLBs = next.lbs
	}
	pl.respread(oldLBs, nextLBs)
	if next != nil {
		ids := make([]string, len(next.elems))
		for i, e := range next.elems {
			ids[i] = e.id()
			es := pl.elem(ids[i])
			es.refs++
			es.elem = e
		}
		pl.services[name] = next.record(ids)
	}
}

// respread moves the endpoints maps' elements from the old slots to the
// next ones: for a chain whose endpoints changed, the ranges that differ go
// and come. Chains gone from next give their slot back at commit.
func (pl *partial) respread(oldLBs, nextLBs []lbSlot) {
	find := func(lbs []lbSlot, chain string) *lbSlot {
		for i := range lbs {
			if lbs[i].chain == chain {
				return &lbs[i]
			}
		}
		return nil
	}
	for i := range oldLBs {
		o := &oldLBs[i]
		n := find(nextLBs, o.chain)
		if n == nil {
			pl.released = append(pl.released, o.chain)
		}
		for _, e := range pl.fs.rc.rangesOnlyIn(o, n) {
			pl.elemsDel.add(func(b batch) { b.deleteElem(e) })
		}
	}
	for i := range nextLBs {
		n := &nextLBs[i]
		for _, e := range pl.fs.rc.rangesOnlyIn(n, find(oldLBs, n.chain)) {
			pl.elemsAdd.add(func(b batch) { b.addElem(e) })
		}
	}
}

// writeChain sends a chain only when its rules differ from the kernel's.
func (pl *partial) writeChain(ch chainSpec, force bool) {
	w := &pl.chainsWrite
	cur, exists := pl.fs.chains[ch.name]
	sum := sumRules(ch.rules)
	if exists && !force && cur == sum {
		if _, stale := pl.fs.stale[ch.name]; !stale {
			return
		}
	}
	name, rules := ch.name, ch.rules
	if !exists {
		pl.chainsCreate.add(func(b batch) { b.addChain(name) })
	} else if cur.n > 0 && !force {
		w.add(func(b batch) { b.flushChain(name) })
	}
	w.add(func(b batch) {
		for _, r := range rules {
			b.addRule(name, r)
		}
	})
	pl.chains[ch.name] = sum
}

// elem returns the planned state of element id, copied on first touch; a
// new one's elem is for the caller to set.
func (pl *partial) elem(id string) *elemState {
	if es, ok := pl.elems[id]; ok {
		return es
	}
	es := &elemState{}
	if cur, ok := pl.fs.elems[id]; ok {
		cp := *cur
		es = &cp
	}
	pl.elems[id] = es
	return es
}

// diffElems turns the planned element states into deletes and adds.
func (pl *partial) diffElems() {
	ids := make([]string, 0, len(pl.elems))
	for id := range pl.elems {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic, and one message per map
	for _, id := range ids {
		es := pl.elems[id]
		cur, had := pl.fs.elems[id]
		inKernel := had && cur.refs > 0
		switch {
		case es.refs <= 0 && inKernel:
			old := cur.elem
			pl.elemsDel.add(func(b batch) { b.deleteElem(old) })
		case es.refs > 0 && !inKernel:
			e := es.elem
			pl.elemsAdd.add(func(b batch) { b.addElem(e) })
		case es.refs > 0 && (cur.value != es.value || cur.verdict != es.verdict || cur.comment != es.comment):
			// A map element's value cannot be replaced by "add".
			old, e := cur.elem, es.elem
			pl.elemsDel.add(func(b batch) { b.deleteElem(old) })
			pl.elemsAdd.add(func(b batch) { b.addElem(e) })
		}
	}
}

// commit makes the beliefs match the kernel after a successful Run.
func (pl *partial) commit() {
	fs := pl.fs
	for name, o := range pl.services {
		if o == nil {
			delete(fs.services, name)
		} else {
			fs.services[name] = o
		}
	}
	for name, sum := range pl.chains {
		fs.nRules += sum.n - fs.chains[name].n
		fs.chains[name] = sum
		if sum.n == 0 {
			if _, ok := fs.stale[name]; !ok {
				fs.stale[name] = pl.now
			}
		} else {
			delete(fs.stale, name)
		}
	}
	for id, es := range pl.elems {
		if es.refs <= 0 {
			delete(fs.elems, id)
		} else {
			fs.elems[id] = es
		}
	}
	for name, t := range pl.affinity {
		if t == nil {
			delete(fs.affinity, name)
		} else {
			fs.affinity[name] = *t
		}
	}
	for m := range pl.maps {
		fs.epMaps[m] = true
	}
	// Only now: the kernel has let go of the slots' elements, and a chain
	// created in this same transaction never took a slot being freed.
	for _, ch := range pl.released {
		fs.rc.slots.release(ch)
	}
}
