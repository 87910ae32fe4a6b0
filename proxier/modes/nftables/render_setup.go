package nftables

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"
)

// renderCtx is everything about the node and options that shapes rules but
// is not a Service: it changes only on full syncs.
type renderCtx struct {
	family     v1.IPFamily
	ipX        string // "ip" or "ip6"
	addrType   string // "ipv4_addr" or "ipv6_addr"
	noLocalhst string
	mark       string
	masqAll    bool
	// localCIDRs match pod-originated traffic; empty when local detection
	// is off.
	localCIDRs []netip.Prefix
	// nodeIPs are the node's addresses, for loadBalancerSourceRanges.
	nodeIPs []netip.Addr
	// nodePortIPs are the addresses accepting NodePorts; nil with
	// nodePortAll means "fib daddr type local".
	nodePortAll bool
	nodePortIPs []string
	// nStock caches the number of stock rules, for metrics.
	nStock int
	// slots outlive the context: a chain keeps its endpoints-map slot.
	slots *slotTable
}

// sameSetup reports whether o renders the same skeleton and Service
// rules as rc: the node- and option-derived fields agree.
func (rc *renderCtx) sameSetup(o *renderCtx) bool {
	return rc.family == o.family && rc.mark == o.mark && rc.masqAll == o.masqAll &&
		slices.Equal(rc.localCIDRs, o.localCIDRs) && slices.Equal(rc.nodeIPs, o.nodeIPs) &&
		rc.nodePortAll == o.nodePortAll && slices.Equal(rc.nodePortIPs, o.nodePortIPs)
}

func newRenderCtx(family v1.IPFamily) *renderCtx {
	if family == v1.IPv6Protocol {
		return &renderCtx{family: family, ipX: "ip6", addrType: "ipv6_addr", noLocalhst: "ip6 daddr != ::1", nodePortAll: true,
			slots: newSlotTable()}
	}
	return &renderCtx{family: v1.IPv4Protocol, ipX: "ip", addrType: "ipv4_addr", noLocalhst: "ip daddr != 127.0.0.0/8", nodePortAll: true,
		slots: newSlotTable()}
}

// inFamily reports whether a belongs to the family this table programs.
func (c *renderCtx) inFamily(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if c.family == v1.IPv6Protocol {
		return a.Is6() && !a.Is4In6()
	}
	return a.Is4() || a.Is4In6()
}

// setLocalDetect builds the pod-traffic match from CIDRs of this family.
func (c *renderCtx) setLocalDetect(cidrs []netip.Prefix) {
	c.localCIDRs = nil
	for _, p := range cidrs {
		if c.inFamily(p.Addr()) {
			c.localCIDRs = append(c.localCIDRs, p.Masked())
		}
	}
}

type baseChain struct {
	name      string
	chainType knftables.BaseChainType
	hook      knftables.BaseChainHook
	priority  knftables.BaseChainPriority
}

// baseChains are upstream v1.34's hooks and priorities: filtering on pre-DNAT
// addresses for source ranges, the rest at filter/dnat/snat priority.
var baseChains = []baseChain{
	{filterPreroutingPreDNATChain, knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10"},
	{filterOutputPreDNATChain, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	{filterInputChain, knftables.FilterType, knftables.InputHook, knftables.FilterPriority},
	{filterForwardChain, knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority},
	{filterOutputChain, knftables.FilterType, knftables.OutputHook, knftables.FilterPriority},
	{natPreroutingChain, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	{natOutputChain, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{natPostroutingChain, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

// jumpChains are the regular chains the base chains jump to. Rejects live in
// input/forward/output because older kernels refuse reject in prerouting.
var jumpChains = []struct{ dst, src, match string }{
	{nodePortEndpointsCheckChain, filterInputChain, "ct state new"},
	{serviceEndpointsCheckChain, filterInputChain, "ct state new"},
	{serviceEndpointsCheckChain, filterForwardChain, "ct state new"},
	{serviceEndpointsCheckChain, filterOutputChain, "ct state new"},
	{firewallCheckChain, filterPreroutingPreDNATChain, "ct state new"},
	{firewallCheckChain, filterOutputPreDNATChain, "ct state new"},
	{servicesChain, natOutputChain, ""},
	{servicesChain, natPreroutingChain, ""},
	{masqueradingChain, natPostroutingChain, ""},
	{clusterIPsCheckChain, filterForwardChain, "ct state new"},
	{clusterIPsCheckChain, filterOutputChain, "ct state new"},
}

// stockChains are the regular chains of the skeleton, in creation order.
var stockChains = []string{
	nodePortEndpointsCheckChain, serviceEndpointsCheckChain, firewallCheckChain,
	servicesChain, masqueradingChain, clusterIPsCheckChain, markMasqChain, rejectChain,
}

// dispatchMaps are the verdict maps and sets whose elements belong to
// Services; full syncs flush and refill them in the Services' transaction.
var dispatchMaps = []string{serviceIPsMap, serviceNodePortsMap, noEndpointServicesMap, noEndpointNodePortsMap, firewallIPsMap, clusterIPsSet, hairpinSet}

// writeSkeleton adds the table, base chains, stock chains and their fixed
// rules, and makes sure the dispatch maps exist; their elements belong to
// the Services' transaction, which flushes and refills them. resetBase
// first deletes the base chains so a changed hook or priority from an
// older version applies.
func (c *renderCtx) writeSkeleton(tx *knftables.Transaction, resetBase bool) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("rules for kube-proxy")})
	if resetBase {
		for _, bc := range baseChains {
			tx.Add(&knftables.Chain{Name: bc.name})
			tx.Delete(&knftables.Chain{Name: bc.name})
		}
	}
	for _, bc := range baseChains {
		ch := &knftables.Chain{Name: bc.name, Type: knftables.PtrTo(bc.chainType),
			Hook: knftables.PtrTo(bc.hook), Priority: knftables.PtrTo(bc.priority)}
		tx.Add(ch)
		tx.Flush(ch)
	}
	for _, name := range stockChains {
		ch := &knftables.Chain{Name: name}
		if name == rejectChain {
			ch.Comment = knftables.PtrTo("helper for @no-endpoint-services / @no-endpoint-nodeports")
		}
		tx.Add(ch)
		tx.Flush(ch)
	}
	for _, j := range jumpChains {
		tx.Add(&knftables.Rule{Chain: j.src, Rule: knftables.Concat(j.match, "jump", j.dst)})
	}
	c.writeSets(tx)
	c.writeStockRules(tx)
}

func (c *renderCtx) writeSets(tx *knftables.Transaction) {
	ipKey := c.addrType + " . inet_proto . inet_service : verdict"
	portKey := "inet_proto . inet_service : verdict"
	maps := []*knftables.Map{
		{Name: serviceIPsMap, Type: ipKey, Comment: knftables.PtrTo("ClusterIP, ExternalIP and LoadBalancer IP traffic")},
		{Name: serviceNodePortsMap, Type: portKey, Comment: knftables.PtrTo("NodePort traffic")},
		{Name: noEndpointServicesMap, Type: ipKey, Comment: knftables.PtrTo("vmap to drop or reject packets to services with no endpoints")},
		{Name: noEndpointNodePortsMap, Type: portKey, Comment: knftables.PtrTo("vmap to drop or reject packets to service nodeports with no endpoints")},
		{Name: firewallIPsMap, Type: ipKey, Comment: knftables.PtrTo("destinations that are subject to LoadBalancerSourceRanges")},
	}
	for _, m := range maps {
		tx.Add(m)
	}
	tx.Add(&knftables.Set{Name: clusterIPsSet, Type: c.addrType, Comment: knftables.PtrTo("Active ClusterIPs")})
	tx.Add(&knftables.Set{Name: hairpinSet, Type: c.addrType + " . " + c.addrType,
		Comment: knftables.PtrTo("endpoint . endpoint: a pod reaching itself through a Service is masqueraded")})

	// add+delete makes "ensure absent" safe when the set does not exist.
	np := &knftables.Set{Name: nodePortIPsSet, Type: c.addrType, Comment: knftables.PtrTo("IPs that accept NodePort traffic")}
	tx.Add(np)
	if c.nodePortAll {
		tx.Delete(&knftables.Set{Name: nodePortIPsSet})
		return
	}
	tx.Flush(np)
	for _, ip := range c.nodePortIPs {
		tx.Add(&knftables.Element{Set: nodePortIPsSet, Key: []string{ip}})
	}
}

func (c *renderCtx) writeStockRules(tx *knftables.Transaction) {
	rule := func(chain string, comment string, parts ...interface{}) {
		r := &knftables.Rule{Chain: chain, Rule: knftables.Concat(parts...)}
		if comment != "" {
			r.Comment = knftables.PtrTo(comment)
		}
		tx.Add(r)
	}
	rule(markMasqChain, "", "mark set mark or", c.mark)
	// Hairpin, decided after DNAT instead of in a chain per endpoint.
	rule(masqueradingChain, "", "ct status dnat", c.ipX, "saddr .", c.ipX, "daddr", "@", hairpinSet, "jump", markMasqChain)
	rule(masqueradingChain, "", "mark and", c.mark, "== 0 return")
	rule(masqueradingChain, "", "mark set mark xor", c.mark)
	rule(masqueradingChain, "", "masquerade fully-random")
	rule(clusterIPsCheckChain, "Reject traffic to invalid ports of ClusterIPs", c.ipX, "daddr", "@", clusterIPsSet, "reject")
	rule(rejectChain, "", "reject")
	rule(serviceEndpointsCheckChain, "", c.ipX, "daddr . meta l4proto . th dport vmap", "@", noEndpointServicesMap)
	rule(firewallCheckChain, "", c.ipX, "daddr . meta l4proto . th dport vmap", "@", firewallIPsMap)
	rule(servicesChain, "", c.ipX, "daddr . meta l4proto . th dport vmap", "@", serviceIPsMap)
	if c.nodePortAll {
		rule(nodePortEndpointsCheckChain, "", c.noLocalhst, "meta l4proto . th dport vmap", "@", noEndpointNodePortsMap)
		rule(servicesChain, "", "fib daddr type local", c.noLocalhst, "meta l4proto . th dport vmap", "@", serviceNodePortsMap)
	} else {
		rule(nodePortEndpointsCheckChain, "", c.ipX, "daddr", "@", nodePortIPsSet, "meta l4proto . th dport vmap", "@", noEndpointNodePortsMap)
		rule(servicesChain, "", c.ipX, "daddr", "@", nodePortIPsSet, "meta l4proto . th dport vmap", "@", serviceNodePortsMap)
	}
}
