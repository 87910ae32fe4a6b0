package ipvs

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
)

// KernelError says the kernel cannot run the IPVS mode, naming the
// missing module and how to load it. The proxier stops with it: unlike
// kube-proxy before 1.11 it never falls back to iptables
// (kubernetes#63801), which would silently change how Services behave.
type KernelError struct {
	// Module is the missing kernel module: "ip_vs" or "ip_vs_<scheduler>".
	Module string
	// Scheduler is the configured scheduler.
	Scheduler string
	Err       error
}

func (e *KernelError) Error() string {
	return fmt.Sprintf("ipvs mode: the kernel has no %s (%v); load it with `modprobe ip_vs ip_vs_%s` "+
		"(and list the modules in /etc/modules-load.d/ to keep them across reboots), or choose another proxy mode; "+
		"the proxier does not fall back to iptables", e.Module, e.Err, e.Scheduler)
}

func (e *KernelError) Unwrap() error { return e.Err }

// procIPVS exists once ip_vs is loaded; a variable for tests.
var procIPVS = "/proc/net/ip_vs"

// kernelHasIPVS checks for ip_vs the two ways upstream's bug reports
// suggest: the proc file and the generic netlink family. moby/ipvs alone
// cannot tell (moby/ipvs#27: without the family, calls quietly succeed).
func kernelHasIPVS() error {
	if _, err := os.Stat(procIPVS); err != nil {
		return fmt.Errorf("%s: %w", procIPVS, err)
	}
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		return fmt.Errorf("generic netlink family IPVS: %w", err)
	}
	return nil
}

// probeAddr is upstream's: TEST-NET-2, never a real Service address.
var probeAddr = net.ParseIP("198.51.100.0").To4()

// probeScheduler checks that sched is usable: an existing virtual server
// using it proves it, else a probe virtual server is created and deleted.
func probeScheduler(h Interface, sched string) error {
	list, err := h.GetServices()
	if err != nil {
		return fmt.Errorf("list IPVS services: %w", err)
	}
	if slices.ContainsFunc(list, func(s *ipvs.Service) bool { return s.SchedName == sched }) {
		return nil
	}
	probe := &ipvs.Service{Address: probeAddr, Port: 20000, Protocol: 6, AddressFamily: 2, SchedName: sched, Netmask: 0xffffffff}
	if err := h.NewService(probe); err != nil {
		return fmt.Errorf("create a probe virtual server with scheduler %q: %w", sched, err)
	}
	if err := h.DelService(probe); err != nil {
		return fmt.Errorf("delete the probe virtual server: %w", err)
	}
	return nil
}

// preflight returns a *KernelError when the kernel lacks IPVS or the
// scheduler. h is nil when the handle is still to be opened.
func (p *Proxier) preflight() error {
	if p.opts.IPVS == nil {
		if err := kernelHasIPVS(); err != nil {
			return &KernelError{Module: "ip_vs", Scheduler: p.opts.Scheduler, Err: err}
		}
	}
	h, err := p.handle()
	if err != nil {
		return &KernelError{Module: "ip_vs", Scheduler: p.opts.Scheduler, Err: err}
	}
	if err := probeScheduler(h, p.opts.Scheduler); err != nil {
		return &KernelError{Module: "ip_vs_" + p.opts.Scheduler, Scheduler: p.opts.Scheduler, Err: err}
	}
	return nil
}

// IsKernelError reports whether err says the kernel cannot run the mode.
func IsKernelError(err error) bool {
	var ke *KernelError
	return errors.As(err, &ke)
}
