package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/moby/ipvs"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// Proxier is the IPVS mode.
type Proxier struct {
	opts Options

	mu   sync.Mutex
	ipvs Interface
	// needFull is set until a full sync succeeds and after any failure:
	// the record of the kernel below can no longer be trusted.
	needFull bool
	node     nodeInfo
	// applied is what each ServicePort put into the kernel; the refs
	// count how many ServicePorts want an address or ipset entry (two
	// Services may share an externalIP or an endpoint).
	applied   map[state.ServicePortName]*svcDesired
	vsOwner   map[vsKey]state.ServicePortName
	addrRefs  map[netip.Addr]int
	entryRefs map[setEntry]int
	graceful  *graceful
	rules     rules
	// destReadFailed is set once the one-pass read of the real servers
	// failed and said why.
	destReadFailed bool
}

var _ modes.Mode = &Proxier{}

// New checks the options and, unless opts.NoPreflight, the kernel: a
// kernel without ip_vs or the scheduler's module gives a *KernelError.
// It then sets upstream's sysctls and the IPVS timeouts. It writes no
// virtual server: the first Sync does.
func New(ctx context.Context, opts Options) (*Proxier, error) {
	if err := opts.complete(); err != nil {
		return nil, fmt.Errorf("ipvs mode: %w", err)
	}
	p := &Proxier{opts: opts, needFull: true, ipvs: opts.IPVS}
	p.reset()
	p.graceful = newGraceful(opts.GracefulTimeout, opts.Now)
	if opts.NoPreflight {
		return p, nil
	}
	if err := p.preflight(); err != nil {
		return nil, err
	}
	if err := p.applySysctls(ctx); err != nil {
		return nil, fmt.Errorf("ipvs mode: %w", err)
	}
	if opts.TCPTimeout > 0 || opts.TCPFinTimeout > 0 || opts.UDPTimeout > 0 {
		h, _ := p.handle()
		if err := h.SetConfig(&ipvs.Config{TimeoutTCP: opts.TCPTimeout, TimeoutTCPFin: opts.TCPFinTimeout, TimeoutUDP: opts.UDPTimeout}); err != nil {
			// As upstream: logged, not fatal.
			klog.ErrorS(err, "Failed to configure IPVS timeouts", "tcp", opts.TCPTimeout, "tcpFin", opts.TCPFinTimeout, "udp", opts.UDPTimeout)
		}
	}
	return p, nil
}

func (p *Proxier) reset() {
	p.applied = map[state.ServicePortName]*svcDesired{}
	p.vsOwner = map[vsKey]state.ServicePortName{}
	p.addrRefs = map[netip.Addr]int{}
	p.entryRefs = map[setEntry]int{}
}

// handle opens the IPVS handle on first use.
func (p *Proxier) handle() (Interface, error) {
	if p.ipvs != nil {
		return p.ipvs, nil
	}
	h, err := NewHandle(p.opts.NetNS)
	if err != nil {
		return nil, err
	}
	p.ipvs = h
	return h, nil
}

// OpenHandle opens the IPVS netlink handle now rather than at the first
// call that needs it: opening runs a modprobe (over a second in the
// kernel VM), and leaving ipvs, the flush must follow the count of the
// connections it would break at once (see the migration in app). On a
// kernel without ip_vs there is nothing to open, as for Cleanup.
func (p *Proxier) OpenHandle() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ipvs == nil {
		if err := kernelHasIPVS(); err != nil {
			return nil
		}
	}
	_, err := p.handle()
	return err
}

// Name is the mode as in the config.
func (p *Proxier) Name() string { return "ipvs" }

// Sync programs view. A partial sync touches only the virtual servers,
// addresses and ipset entries of the changed ServicePorts, diffing them
// against what the last sync applied; a full one reads the kernel back
// and repairs whatever differs.
func (p *Proxier) Sync(ctx context.Context, view *state.View, changes *state.Changes) (modes.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if view == nil {
		return modes.Result{}, fmt.Errorf("ipvs sync: no view")
	}
	if view.Family != "" && view.Family != p.opts.Family {
		return modes.Result{}, fmt.Errorf("ipvs sync: view is %s, proxier is %s", view.Family, p.opts.Family)
	}
	h, err := p.handle()
	if err != nil {
		return modes.Result{}, fmt.Errorf("ipvs sync: %w", err)
	}
	full := p.needFull || changes == nil || changes.Full
	var syncErr error
	if full {
		syncErr = p.fullSync(ctx, h, view)
	} else {
		syncErr = p.partialSync(h, view, changes.Services)
	}
	if err := p.graceful.process(h); err != nil {
		klog.ErrorS(err, "Graceful termination of real servers")
	}
	res := modes.Result{Full: full, Rules: map[string]int{
		"nat": p.rules.nat, "filter": p.rules.filter, "ipvs": len(p.vsOwner),
	}}
	if syncErr != nil {
		p.needFull = true
		return res, fmt.Errorf("ipvs sync (full=%v): %w", full, syncErr)
	}
	if full {
		p.needFull = false
	}
	return res, nil
}

// desiredAll translates every ServicePort, skipping (and logging) the
// ones that cannot be programmed.
func (p *Proxier) desiredAll(view *state.View) map[state.ServicePortName]*svcDesired {
	out := make(map[state.ServicePortName]*svcDesired, len(view.Services))
	for name, sp := range view.Services {
		if sp == nil {
			continue
		}
		d, err := p.desired(sp, &p.node)
		if err != nil {
			klog.ErrorS(err, "Skipping service port", "servicePort", name)
			continue
		}
		out[name] = d
	}
	return out
}

// refreshNode reads the node's addresses: NodePort virtual servers listen
// on them, and an externalIP among them is not bound to kube-ipvs0.
func (p *Proxier) refreshNode(view *state.View) error {
	all, err := p.opts.Links.NodeAddresses(dummyDevice)
	info := nodeInfo{local: map[netip.Addr]bool{}}
	for _, a := range view.Node.IPs {
		if a = a.Unmap(); p.inFamily(a) {
			info.primary = a
			break
		}
	}
	for _, a := range all {
		info.local[a] = true
		if a.IsLoopback() || a.IsLinkLocalUnicast() && a.Is6() {
			continue // as upstream: IPVS cannot serve NodePorts there
		}
		if p.nodePortAllowed(a) {
			info.nodePortIPs = append(info.nodePortIPs, a)
		}
	}
	p.node = info
	if err != nil {
		return fmt.Errorf("node addresses: %w", err)
	}
	return nil
}

func (p *Proxier) nodePortAllowed(a netip.Addr) bool {
	if !p.inFamily(a) {
		return false
	}
	any := false
	for _, pr := range p.opts.NodePortAddresses {
		pa := pr.Addr().Unmap()
		if !p.inFamily(pa) {
			continue
		}
		any = true
		if pr.Bits() == 0 || netip.PrefixFrom(pa, pr.Bits()).Contains(a) {
			return true
		}
	}
	return !any
}

// hold records d as applied for name, counting its addresses and entries.
func (p *Proxier) hold(name state.ServicePortName, d *svcDesired) {
	p.applied[name] = d
	for k := range d.servers {
		p.vsOwner[k] = name
	}
	for _, a := range uniq(d.addrs) {
		p.addrRefs[a]++
	}
	for _, e := range uniq(d.entries) {
		p.entryRefs[e]++
	}
}

func uniq[T comparable](in []T) []T {
	seen := make(map[T]bool, len(in))
	out := in[:0:0]
	for _, x := range in {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// dropConflicts removes from d the virtual servers another ServicePort
// owns (say, two Services with the same externalIP and port): the first
// one keeps it, as the kernel can hold only one.
func (p *Proxier) dropConflicts(name state.ServicePortName, d *svcDesired) {
	for k := range d.servers {
		if owner, ok := p.vsOwner[k]; ok && owner != name {
			klog.ErrorS(nil, "Virtual server already used by another service port; skipped", "virtualServer", k, "servicePort", name, "owner", owner)
			delete(d.servers, k)
		}
	}
}

func errorf(errs *[]error, format string, a ...any) {
	*errs = append(*errs, fmt.Errorf(format, a...))
}
