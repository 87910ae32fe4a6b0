package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// DefaultScheduler is upstream's: round robin.
const DefaultScheduler = "rr"

// Schedulers are the IPVS schedulers upstream accepts.
var Schedulers = state.IPVSSchedulers

// Options configure the IPVS mode (KubeProxyConfiguration's ipvs section
// and the common fields it uses).
type Options struct {
	// NetNS is the network namespace to program ("" = the current one).
	NetNS string
	// Family is the IP family of this proxier; IPv4 when empty.
	Family v1.IPFamily
	// Scheduler is the default IPVS scheduler; "rr" when empty.
	Scheduler string
	// StrictARP sets arp_ignore=1 and arp_announce=2 so the node does not
	// answer ARP for the Service addresses on kube-ipvs0.
	StrictARP bool
	// TCPTimeout, TCPFinTimeout and UDPTimeout are IPVS connection
	// timeouts (ipvsadm --set); 0 leaves the kernel's value.
	TCPTimeout, TCPFinTimeout, UDPTimeout time.Duration
	// ExcludeCIDRs are virtual server addresses a full sync never deletes
	// (someone else's IPVS services).
	ExcludeCIDRs []netip.Prefix
	// MasqueradeAll marks all ClusterIP traffic for SNAT.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit for SNAT (mark 1<<bit); 14 when nil.
	MasqueradeBit *int32
	LocalDetect   iptables.LocalDetect
	// NodePortAddresses limit NodePorts to local addresses in these
	// prefixes; empty means every local address but loopback.
	NodePortAddresses []netip.Prefix
	// GracefulTimeout bounds how long a removed TCP real server is kept
	// at weight 0 while its connections drain; 15 minutes when 0.
	GracefulTimeout time.Duration
	// NoPreflight skips the kernel checks of New, for --cleanup: Cleanup
	// must work where the mode cannot run.
	NoPreflight bool
	// KeepChains, by table, are iptables chains Cleanup leaves alone (with
	// the jumps to them): the iptables mode owns them now (a migration
	// from ipvs to iptables, which write the same top-level chains).
	KeepChains map[string][]string

	// WeightFor returns the weight of one real server (0 = 1). A seam for
	// weighted schedulers in tests; Kubernetes endpoints have no weight.
	WeightFor func(state.ServicePortName, state.Endpoint) int

	// The kernel seams; nil means the real thing in NetNS.
	IPVS   Interface
	IPSet  IPSetter
	Links  Links
	Runner iptables.Runner
	Sysctl iptables.Sysctl
	// Now is the clock of graceful termination.
	Now func() time.Time
}

func (o *Options) complete() error {
	if o.Family == "" {
		o.Family = v1.IPv4Protocol
	}
	if o.Family != v1.IPv4Protocol && o.Family != v1.IPv6Protocol {
		return fmt.Errorf("unknown IP family %q", o.Family)
	}
	if o.Scheduler == "" {
		o.Scheduler = DefaultScheduler
	}
	if !slices.Contains(Schedulers, o.Scheduler) {
		return fmt.Errorf("scheduler %q is not one of %v", o.Scheduler, Schedulers)
	}
	if o.MasqueradeBit == nil {
		bit := int32(14)
		o.MasqueradeBit = &bit
	}
	if *o.MasqueradeBit < 0 || *o.MasqueradeBit > 31 {
		return fmt.Errorf("masquerade bit %d not in 0..31", *o.MasqueradeBit)
	}
	if o.TCPTimeout < 0 || o.TCPFinTimeout < 0 || o.UDPTimeout < 0 {
		return fmt.Errorf("IPVS timeouts must not be negative")
	}
	if o.GracefulTimeout == 0 {
		o.GracefulTimeout = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sysctl == nil {
		o.Sysctl = iptables.ExecSysctl{NetNS: o.NetNS}
	}
	if o.Runner == nil {
		o.Runner = &iptables.Exec{NetNS: o.NetNS, Family: o.Family}
	}
	if o.Links == nil {
		o.Links = &netlinkLinks{ns: o.NetNS, family: o.Family}
	}
	if o.IPSet == nil {
		o.IPSet = &netlinkIPSet{ns: o.NetNS}
	}
	return nil
}

// sysctls are upstream's: IPVS must see conntrack (for the SNAT rules),
// expire connections to deleted real servers (so UDP flows move on) and
// the persistence templates of quiescent ones, and forward.
var sysctls = []struct{ key, value string }{
	{"net.ipv4.vs.conntrack", "1"},
	{"net.ipv4.vs.expire_nodest_conn", "1"},
	{"net.ipv4.vs.expire_quiescent_template", "1"},
	{"net.ipv4.ip_forward", "1"},
}

var strictARPSysctls = []struct{ key, value string }{
	{"net.ipv4.conf.all.arp_ignore", "1"},
	{"net.ipv4.conf.all.arp_announce", "2"},
}

func (p *Proxier) applySysctls(ctx context.Context) error {
	all := sysctls
	if p.opts.StrictARP {
		all = append(slices.Clone(sysctls), strictARPSysctls...)
	}
	for _, s := range all {
		if v, err := p.opts.Sysctl.Get(ctx, s.key); err == nil && v == s.value {
			continue
		}
		if err := p.opts.Sysctl.Set(ctx, s.key, s.value); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", s.key, s.value, err)
		}
	}
	return nil
}
