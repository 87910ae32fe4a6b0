package nftables

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// partial collects one partial sync: the transaction plus the beliefs it
// will make true, applied only when the kernel accepted it.
type partial struct {
	fs       *familyState
	now      time.Time
	services map[state.ServicePortName]*svcObjects // nil value = removed
	chains   map[string][]rule                     // nil value = flushed (stale)
	elems    map[string]*elemState
	affinity map[string]*time.Duration // nil = deleted
	// the transaction in phases, so objects exist before their references
	// and references are gone before their objects are deleted.
	chainsCreate, setsAdd, chainsWrite, elemsDel, elemsAdd, chainsFlush, setsDel phase
}

// phase is an ordered list of operations, replayed into the one transaction.
type phase []func(*knftables.Transaction)

func (ph *phase) Add(o knftables.Object) {
	*ph = append(*ph, func(tx *knftables.Transaction) { tx.Add(o) })
}
func (ph *phase) Flush(o knftables.Object) {
	*ph = append(*ph, func(tx *knftables.Transaction) { tx.Flush(o) })
}
func (ph *phase) Delete(o knftables.Object) {
	*ph = append(*ph, func(tx *knftables.Transaction) { tx.Delete(o) })
}

// syncPartial rewrites only the changed ServicePorts: their map elements and
// the chains whose rules differ from what the kernel holds, in one
// transaction. Unchanged endpoint chains are not touched.
func (p *Proxier) syncPartial(ctx context.Context, fs *familyState, view *state.View, changes *state.Changes) error {
	pl := &partial{fs: fs, now: p.now(), services: map[state.ServicePortName]*svcObjects{},
		chains: map[string][]rule{}, elems: map[string]*elemState{}, affinity: map[string]*time.Duration{}}
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

	tx := fs.nft.NewTransaction()
	for _, ph := range []phase{pl.chainsCreate, pl.setsAdd, pl.chainsWrite, pl.elemsDel, pl.elemsAdd, pl.chainsFlush, pl.setsDel} {
		for _, op := range ph {
			op(tx)
		}
	}
	if tx.NumOperations() == 0 {
		return nil
	}
	if err := fs.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables partial sync of %d service ports: %w", len(changes.Services), err)
	}
	pl.commit()
	return nil
}

// replace plans the move of one ServicePort from old to next objects.
func (pl *partial) replace(name state.ServicePortName, old, next *svcObjects) {
	pl.services[name] = next
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
		for _, ch := range old.chains {
			pl.setsAdd.Flush(&knftables.Chain{Name: ch.name})
		}
	}
	if next != nil {
		for _, a := range next.affinity {
			cur, ok := fs.affinity[a.name]
			switch {
			case !ok:
				pl.setsAdd.Add(affinityObject(fs.rc, a))
			case cur != a.timeout:
				pl.setsAdd.Delete(&knftables.Set{Name: a.name})
				pl.setsAdd.Add(affinityObject(fs.rc, a))
			}
			pl.affinity[a.name] = &a.timeout
		}
		for _, ch := range next.chains {
			pl.writeChain(ch, force)
		}
	}
	if old != nil {
		for _, ch := range old.chains {
			if !wantChains[ch.name] {
				pl.chainsFlush.Flush(&knftables.Chain{Name: ch.name})
				pl.chains[ch.name] = nil
			}
		}
		for _, a := range old.affinity {
			if _, keep := wantSets[a.name]; !keep {
				pl.setsDel.Delete(&knftables.Set{Name: a.name})
				pl.affinity[a.name] = nil
			}
		}
		for _, e := range old.elems {
			pl.elem(e).refs--
		}
	}
	if next != nil {
		for _, e := range next.elems {
			es := pl.elem(e)
			es.refs++
			es.value, es.comment = e.value, e.comment
		}
	}
}

// writeChain sends a chain only when its rules differ from the kernel's.
func (pl *partial) writeChain(ch chainSpec, force bool) {
	w := &pl.chainsWrite
	cur, exists := pl.fs.chains[ch.name]
	if exists && !force && slices.Equal(cur, ch.rules) {
		if _, stale := pl.fs.stale[ch.name]; !stale {
			return
		}
	}
	if !exists {
		pl.chainsCreate.Add(&knftables.Chain{Name: ch.name})
	} else if len(cur) > 0 && !force {
		w.Flush(&knftables.Chain{Name: ch.name})
	}
	for _, r := range ch.rules {
		w.Add(r.object(ch.name))
	}
	pl.chains[ch.name] = ch.rules
}

// elem returns the planned state of an element, copied on first touch.
func (pl *partial) elem(e elem) *elemState {
	id := e.id()
	if es, ok := pl.elems[id]; ok {
		return es
	}
	es := &elemState{elem: e}
	if cur, ok := pl.fs.elems[id]; ok {
		cp := *cur
		es = &cp
	}
	pl.elems[id] = es
	return es
}

// diffElems turns the planned element states into deletes and adds.
func (pl *partial) diffElems() {
	for id, es := range pl.elems {
		cur, had := pl.fs.elems[id]
		inKernel := had && cur.refs > 0
		switch {
		case es.refs <= 0 && inKernel:
			pl.elemsDel.Delete(cur.object())
		case es.refs > 0 && !inKernel:
			pl.elemsAdd.Add(es.object())
		case es.refs > 0 && (cur.value != es.value || cur.comment != es.comment):
			// A map element's value cannot be replaced by "add".
			pl.elemsDel.Delete(cur.object())
			pl.elemsAdd.Add(es.object())
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
	for name, rules := range pl.chains {
		fs.nRules += len(rules) - len(fs.chains[name])
		fs.chains[name] = rules
		if rules == nil {
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
}
