package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/ipvs"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// vsService is the ipvs.Service for virtual server k as vs wants it.
func vsService(k vsKey, vs *vServer) *ipvs.Service {
	s := ipvsService(k)
	s.SchedName, s.Flags, s.Timeout = vs.sched, vs.flags, vs.timeout
	return s
}

func joinErrs(errs []error) error {
	if len(errs) > 10 {
		return fmt.Errorf("%d errors, the first: %w", len(errs), errors.Join(errs[:10]...))
	}
	return errors.Join(errs...)
}

func (p *Proxier) excluded(a netip.Addr) bool {
	for _, c := range p.opts.ExcludeCIDRs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

func (p *Proxier) ipsetFamily() uint8 {
	if p.opts.Family == "IPv6" {
		return 10
	}
	return 2
}

// fullSync makes the kernel match view: it ensures the interface, the
// sets and the iptables rules, then reads every virtual server, address
// and ipset entry back, deleting what it does not want (except in
// ExcludeCIDRs) and creating what is missing.
func (p *Proxier) fullSync(ctx context.Context, h Interface, view *state.View) error {
	if err := p.opts.Links.EnsureDummy(dummyDevice); err != nil {
		return err
	}
	for _, s := range setInfo {
		if err := p.opts.IPSet.Create(s.name, s.typ, p.ipsetFamily()); err != nil {
			return err
		}
	}
	var errs []error
	if err := p.refreshNode(view); err != nil {
		klog.ErrorS(err, "Listing node addresses failed; NodePorts may be missing")
	}
	want := p.desiredAll(view)
	p.reset()
	names := make([]state.ServicePortName, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b state.ServicePortName) int {
		return strings.Compare(a.String()+string(a.Protocol), b.String()+string(b.Protocol))
	})
	for _, n := range names {
		p.dropConflicts(n, want[n])
		p.hold(n, want[n])
	}
	if err := p.fullServers(h, &errs); err != nil {
		return err
	}
	p.fullAddrs(&errs)
	p.fullEntries(&errs)
	// The iptables rules last: on a node leaving iptables mode
	// (--migrate-from) they replace KUBE-SERVICES, which until then
	// DNATs every new connection; written before the virtual servers
	// and kube-ipvs0's addresses exist, new connections in between met
	// neither (seen: 14 of ~1,100 failed in the kernel VM). Written
	// after, IPVS is ready when the old DNAT goes.
	if err := p.ensureJumps(ctx); err != nil {
		return err
	}
	r, err := p.writeRules(ctx, &view.Node)
	p.rules = r
	if err != nil {
		errs = append(errs, err)
	}
	return joinErrs(errs)
}

// fullServers repairs every virtual server. Its writes go through one
// writeQueue: batched when the handle can, which at 10,000 Services is
// 100,000 requests. Its reads are two passes when the handle can read
// every real server at once: one for the virtual servers, one for the
// real servers.
func (p *Proxier) fullServers(h Interface, errs *[]error) error {
	kernel, err := h.GetServices()
	if err != nil {
		return fmt.Errorf("list IPVS services: %w", err)
	}
	table := p.readAllDests(h)
	q := newWriteQueue(h, true)
	seen := map[vsKey]bool{}
	for _, ks := range kernel {
		a, ok := netip.AddrFromSlice(ks.Address)
		a = a.Unmap()
		if !ok || ks.FWMark != 0 || !p.inFamily(a) || p.excluded(a) {
			continue
		}
		k := vsKey{a, ks.Port, ks.Protocol}
		owner, ok := p.vsOwner[k]
		if !ok {
			klog.V(2).InfoS("Deleting unknown virtual server", "virtualServer", k)
			q.add(ipvsOp{kind: opDelService, svc: ks}, func(err error) {
				if err != nil {
					errorf(errs, "virtual server %s: delete: %w", k, err)
				}
			})
			p.graceful.forgetService(k)
			continue
		}
		seen[k] = true
		vs := p.applied[owner].servers[k]
		if ks.SchedName != vs.sched || ks.Flags&^flagHashed != vs.flags || ks.Timeout != vs.timeout {
			q.add(ipvsOp{kind: opUpdateService, svc: vsService(k, vs)}, func(err error) {
				if err != nil {
					errorf(errs, "virtual server %s: update: %w", k, err)
				}
			})
		}
		p.fullDests(h, q, table, k, vs, errs)
	}
	for k, owner := range p.vsOwner {
		if !seen[k] {
			p.createServer(h, q, k, p.applied[owner].servers[k], errs)
		}
	}
	q.flush()
	return nil
}

// readAllDests reads every real server in one pass when h can, or
// returns nil: fullDests then lists them per virtual server. Why it
// cannot is logged once, not at every full sync.
func (p *Proxier) readAllDests(h Interface) *destTable {
	r, ok := h.(destReader)
	if !ok {
		return nil
	}
	t, err := r.readAllDests()
	if err != nil && !p.destReadFailed {
		p.destReadFailed = true
		klog.ErrorS(err, "Reading every IPVS real server at once failed; full syncs list them per virtual server, one netlink dump each")
	}
	return t
}

// fullDests repairs the real servers of one virtual server; draining
// ones stay until graceful termination is done with them. It takes them
// from table, or lists them when table lacks the virtual server (no
// table, or someone else created it after the read).
func (p *Proxier) fullDests(h Interface, q *writeQueue, table *destTable, k vsKey, vs *vServer, errs *[]error) {
	svc := ipvsService(k)
	list, ok := table.dests(k)
	if !ok {
		var err error
		if list, err = h.GetDestinations(svc); err != nil {
			errorf(errs, "virtual server %s: list real servers: %w", k, err)
			return
		}
	}
	have := map[netip.AddrPort]bool{}
	var gone []netip.AddrPort
	for _, kd := range list {
		d := destKey(kd)
		have[d] = true
		w, wanted := vs.dests[d]
		switch {
		case !wanted && p.graceful.isPending(k, d):
		case !wanted:
			gone = append(gone, d)
		case kd.Weight != w:
			p.graceful.cancel(k, d)
			q.add(ipvsOp{kind: opUpdateDest, svc: svc, dest: ipvsDest(d, w)}, func(err error) {
				if err != nil {
					errorf(errs, "virtual server %s: reweigh real server %s: %w", k, d, err)
				}
			})
		}
	}
	for d, w := range vs.dests {
		if !have[d] {
			p.graceful.cancel(k, d)
			q.add(ipvsOp{kind: opNewDest, svc: svc, dest: ipvsDest(d, w)}, func(err error) {
				if err != nil {
					errorf(errs, "virtual server %s: add real server %s: %w", k, d, err)
				}
			})
		}
	}
	// Per call: it reads the real servers' connections first. The
	// queued writes touch other real servers.
	if err := p.graceful.remove(h, k, gone); err != nil {
		*errs = append(*errs, err)
	}
}

func (p *Proxier) fullAddrs(errs *[]error) {
	bound, err := p.opts.Links.Addrs(dummyDevice)
	if err != nil {
		*errs = append(*errs, err)
		return
	}
	have := map[netip.Addr]bool{}
	for _, a := range bound {
		have[a] = true
		if p.addrRefs[a] == 0 && p.inFamily(a) {
			if err := p.opts.Links.DelAddr(dummyDevice, a); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
	var missing []netip.Addr
	for a := range p.addrRefs {
		if !have[a] {
			missing = append(missing, a)
		}
	}
	if b, ok := p.opts.Links.(addrBatcher); ok && len(missing) > 1 {
		for _, err := range b.addAddrs(dummyDevice, missing) {
			if err != nil {
				*errs = append(*errs, err)
			}
		}
		return
	}
	for _, a := range missing {
		if err := p.opts.Links.AddAddr(dummyDevice, a); err != nil {
			*errs = append(*errs, err)
		}
	}
}

func (p *Proxier) fullEntries(errs *[]error) {
	bySet := map[string]map[Entry]bool{}
	for e := range p.entryRefs {
		if bySet[e.set] == nil {
			bySet[e.set] = map[Entry]bool{}
		}
		bySet[e.set][e.e] = true
	}
	for _, s := range setInfo {
		list, err := p.opts.IPSet.List(s.name)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		want := bySet[s.name]
		have := map[Entry]bool{}
		for _, e := range list {
			have[e] = true
			if !want[e] {
				if err := p.opts.IPSet.Del(s.name, e); err != nil {
					*errs = append(*errs, err)
				}
			}
		}
		var missing []Entry
		for e := range want {
			if !have[e] {
				missing = append(missing, e)
			}
		}
		if b, ok := p.opts.IPSet.(entryBatcher); ok && len(missing) > 1 {
			for _, err := range b.addEntries(s.name, missing) {
				if err != nil {
					*errs = append(*errs, err)
				}
			}
			continue
		}
		for _, e := range missing {
			if err := p.opts.IPSet.Add(s.name, e); err != nil {
				*errs = append(*errs, err)
			}
		}
	}
}
