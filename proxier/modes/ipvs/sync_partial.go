package ipvs

import (
	"net/netip"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// partialSync applies the changed ServicePorts only, diffing each against
// what the last sync applied for it: no kernel table is read except the
// real servers of a virtual server losing some (for their connections).
func (p *Proxier) partialSync(h Interface, view *state.View, changed map[state.ServicePortName]struct{}) error {
	var errs []error
	for name := range changed {
		var want *svcDesired
		if sp := view.Services[name]; sp != nil {
			d, err := p.desired(sp, &p.node)
			if err != nil {
				klog.ErrorS(err, "Skipping service port", "servicePort", name)
			} else {
				want = d
			}
		}
		old := p.applied[name]
		p.release(name, old)
		if want != nil {
			p.dropConflicts(name, want)
			p.hold(name, want)
		}
		p.syncServers(h, servers(old), servers(want), &errs)
		p.syncAddrs(old, want, &errs)
		p.syncEntries(old, want, &errs)
	}
	return joinErrs(errs)
}

func servers(d *svcDesired) map[vsKey]*vServer {
	if d == nil {
		return nil
	}
	return d.servers
}

// release forgets what name held, without touching the kernel.
func (p *Proxier) release(name state.ServicePortName, d *svcDesired) {
	if d == nil {
		return
	}
	delete(p.applied, name)
	for k := range d.servers {
		if p.vsOwner[k] == name {
			delete(p.vsOwner, k)
		}
	}
	for _, a := range uniq(d.addrs) {
		if p.addrRefs[a]--; p.addrRefs[a] <= 0 {
			delete(p.addrRefs, a)
		}
	}
	for _, e := range uniq(d.entries) {
		if p.entryRefs[e]--; p.entryRefs[e] <= 0 {
			delete(p.entryRefs, e)
		}
	}
}

// syncServers turns the virtual servers old into want.
func (p *Proxier) syncServers(h Interface, old, want map[vsKey]*vServer, errs *[]error) {
	for k, vs := range want {
		ovs := old[k]
		if ovs == nil {
			p.createServer(h, newWriteQueue(h, false), k, vs, errs)
			continue
		}
		svc := ipvsService(k)
		if !vs.sameAttrs(ovs) {
			if err := h.UpdateService(vsService(k, vs)); err != nil {
				errorf(errs, "virtual server %s: update: %w", k, err)
			}
		}
		var gone []netip.AddrPort
		for d, w := range vs.dests {
			ow, ok := ovs.dests[d]
			switch {
			case !ok && p.graceful.isPending(k, d):
				p.graceful.cancel(k, d)
				if err := h.UpdateDestination(svc, ipvsDest(d, w)); err != nil {
					errorf(errs, "virtual server %s: restore real server %s: %w", k, d, err)
				}
			case !ok:
				if err := h.NewDestination(svc, ipvsDest(d, w)); err != nil {
					errorf(errs, "virtual server %s: add real server %s: %w", k, d, err)
				}
			case ow != w:
				if err := h.UpdateDestination(svc, ipvsDest(d, w)); err != nil {
					errorf(errs, "virtual server %s: reweigh real server %s: %w", k, d, err)
				}
			}
		}
		for d := range ovs.dests {
			if _, ok := vs.dests[d]; !ok {
				gone = append(gone, d)
			}
		}
		if err := p.graceful.remove(h, k, gone); err != nil {
			*errs = append(*errs, err)
		}
	}
	for k := range old {
		if _, ok := want[k]; ok {
			continue
		}
		if owner, taken := p.vsOwner[k]; taken {
			// Another ServicePort took it over in this sync: leave it.
			klog.V(2).InfoS("Virtual server passes to another service port", "virtualServer", k, "servicePort", owner)
			continue
		}
		if err := h.DelService(ipvsService(k)); err != nil {
			errorf(errs, "virtual server %s: delete: %w", k, err)
		}
		p.graceful.forgetService(k)
	}
}

// createServer creates virtual server k with its real servers through q.
// A virtual server that exists already (left by an earlier run) is taken
// over; one that can be neither created nor updated gets no real servers
// and one error. In batch mode its real servers were sent before that was
// known: the kernel refused them (no such virtual server) and those
// errors are dropped, as they would not have been tried one by one.
func (p *Proxier) createServer(h Interface, q *writeQueue, k vsKey, vs *vServer, errs *[]error) {
	failed := false
	q.add(ipvsOp{kind: opNewService, svc: vsService(k, vs)}, func(err error) {
		if err == nil {
			return
		}
		// Left by an earlier run: take it over.
		if uerr := h.UpdateService(vsService(k, vs)); uerr != nil {
			errorf(errs, "virtual server %s: create: %w", k, err)
			failed = true
		}
	})
	if failed {
		return
	}
	svc := ipvsService(k)
	for d, w := range vs.dests {
		if p.graceful.isPending(k, d) {
			p.graceful.cancel(k, d)
			q.add(ipvsOp{kind: opUpdateDest, svc: svc, dest: ipvsDest(d, w)}, func(err error) {
				if err == nil || failed {
					return
				}
				if err := h.NewDestination(svc, ipvsDest(d, w)); err != nil {
					errorf(errs, "virtual server %s: add real server %s: %w", k, d, err)
				}
			})
			continue
		}
		q.add(ipvsOp{kind: opNewDest, svc: svc, dest: ipvsDest(d, w)}, func(err error) {
			if err != nil && !failed {
				errorf(errs, "virtual server %s: add real server %s: %w", k, d, err)
			}
		})
	}
}

// syncAddrs binds the addresses want adds (unless another ServicePort
// already holds them) and unbinds those nobody holds any more. Run
// after release and hold.
func (p *Proxier) syncAddrs(old, want *svcDesired, errs *[]error) {
	before, after := addrSet(old), addrSet(want)
	for a := range after {
		if !before[a] && p.addrRefs[a] == 1 {
			if err := p.opts.Links.AddAddr(dummyDevice, a); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
	for a := range before {
		if !after[a] && p.addrRefs[a] == 0 {
			if err := p.opts.Links.DelAddr(dummyDevice, a); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
}

func addrSet(d *svcDesired) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	if d != nil {
		for _, a := range d.addrs {
			out[a] = true
		}
	}
	return out
}

func entrySet(d *svcDesired) map[setEntry]bool {
	out := map[setEntry]bool{}
	if d != nil {
		for _, e := range d.entries {
			out[e] = true
		}
	}
	return out
}

// syncEntries is syncAddrs for ipset entries.
func (p *Proxier) syncEntries(old, want *svcDesired, errs *[]error) {
	before, after := entrySet(old), entrySet(want)
	for e := range after {
		if !before[e] && p.entryRefs[e] == 1 {
			if err := p.opts.IPSet.Add(e.set, e.e); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
	for e := range before {
		if !after[e] && p.entryRefs[e] == 0 {
			if err := p.opts.IPSet.Del(e.set, e.e); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
}
