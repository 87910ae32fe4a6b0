package nftables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// rule is one rule of a per-service chain: its nft text and the same rule
// as netlink expressions (NFTA_RULE_EXPRESSIONS' content).
type rule struct {
	text    string
	comment string
	nl      string
}

func (r rule) withComment(c string) rule { r.comment = c; return r }

// chainSpec is a per-service chain and its complete rule list.
type chainSpec struct {
	name  string
	rules []rule
}

// elem is one element of a dispatch map or set owned by a Service.
type elem struct {
	container string // map or set name
	isSet     bool
	key       []string
	// value is a data map element's value as nft text; a verdict map's
	// says it with verdict alone (its text is derived: 10,000 strings
	// fewer to keep), and a set element has neither.
	value   string
	comment string
	nkey    string  // the key as the kernel stores it
	verdict verdict // the value of a verdict map's element
	// In an endpoints map: the interval's end + 1 as the kernel stores it
	// (an element of its own, flagged as the end), and the value.
	nend, data string
}

// verdict is a map element's value: a code of nf_tables.h and its chain.
type verdict struct {
	code  int32
	chain string
}

func gotoVerdict(chain string) verdict { return verdict{verdictGoto, chain} }

// String is the verdict as nft writes it.
func (v verdict) String() string {
	switch v.code {
	case verdictDrop:
		return "drop"
	case verdictGoto:
		return "goto " + v.chain
	case verdictJump:
		return "jump " + v.chain
	case verdictReturn:
		return "return"
	default:
		return fmt.Sprintf("verdict %d", v.code)
	}
}

// valueText is the element's value as nft text; "" for a set element.
func (e elem) valueText() string {
	if e.isSet {
		return ""
	}
	if e.value != "" {
		return e.value
	}
	return e.verdict.String()
}

func (e elem) id() string { return e.container + "|" + strings.Join(e.key, " . ") }

// affinitySet is a dynamic per-endpoint set remembering ClientIP affinity.
type affinitySet struct {
	name    string
	timeout time.Duration
}

// svcObjects is everything one ServicePort puts into the table.
type svcObjects struct {
	chains   []chainSpec
	elems    []elem
	affinity []affinitySet
	lbs      []lbSlot // policy chains' slots in the endpoints maps
}

// validate rejects what cannot be programmed; the Service is then skipped.
func (c *renderCtx) validate(sp *state.ServicePort) error {
	switch sp.Protocol {
	case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
	default:
		return fmt.Errorf("unsupported protocol %q", sp.Protocol)
	}
	if !c.inFamily(sp.ClusterIP) {
		return fmt.Errorf("clusterIP %s is not %s", sp.ClusterIP, c.family)
	}
	if sp.Port < 1 || sp.Port > 65535 {
		return fmt.Errorf("port %d out of range", sp.Port)
	}
	if sp.NodePort < 0 || sp.NodePort > 65535 {
		return fmt.Errorf("nodePort %d out of range", sp.NodePort)
	}
	if sp.SessionAffinity && sp.StickySeconds < 1 {
		return fmt.Errorf("sessionAffinity timeout %ds must be positive", sp.StickySeconds)
	}
	if len(sp.AllEndpoints) > slotWidth {
		return fmt.Errorf("%d endpoints: one Service port can spread its traffic over at most %d", len(sp.AllEndpoints), slotWidth)
	}
	for _, ep := range sp.AllEndpoints {
		if !c.inFamily(ep.IP) || ep.Port < 1 || ep.Port > 65535 {
			return fmt.Errorf("endpoint %s is not a usable %s endpoint", ep, c.family)
		}
	}
	return nil
}

// svcNames are the chain names of one ServicePort (upstream's scheme).
type svcNames struct {
	cluster, local, external, firewall string
	proto                              string
}

func namesFor(sp *state.ServicePort) svcNames {
	proto := strings.ToLower(string(sp.Protocol))
	base := serviceNameBase(sp.Name, proto)
	return svcNames{
		cluster: clusterChainPrefix + base, local: localChainPrefix + base,
		external: externalChainPrefix + base, firewall: firewallChainPrefix + base,
		proto: proto,
	}
}

// renderService translates one ServicePort, following upstream
// syncProxyRules; semantics come from the View's helpers.
func (c *renderCtx) renderService(sp *state.ServicePort) (*svcObjects, error) {
	if err := c.validate(sp); err != nil {
		return nil, err
	}
	n := namesFor(sp)
	o := &svcObjects{}
	nameStr := sp.Name.String()
	port := strconv.Itoa(int(sp.Port))
	// ClusterEndpoints is empty for a Service that never uses them
	// (internalTrafficPolicy Local, not externally accessible), as upstream's
	// CategorizeEndpoints; HasEndpoints alone says "reject". Chains are only
	// referenced below when their endpoint list is non-empty.
	hasEndpoints := sp.HasEndpoints
	hasInternal := hasEndpoints && sp.HasInternalEndpoints()
	hasExternal := hasEndpoints && sp.HasExternalEndpoints()
	extAccessible := sp.ExternallyAccessible()
	extLocal := sp.ExternalPolicyLocal && extAccessible

	usesCluster := len(sp.ClusterEndpoints) > 0 && (!sp.InternalPolicyLocal || extAccessible)
	usesLocal := len(sp.LocalEndpoints) > 0 && (sp.InternalPolicyLocal || extLocal)
	internalChain := n.cluster
	if sp.InternalPolicyLocal {
		internalChain = n.local
	}
	externalPolicyChain := n.cluster
	if extLocal {
		externalPolicyChain = n.local
	}
	usesExternal := hasEndpoints && extAccessible

	// Without endpoints anywhere: reject; with none for this traffic: drop.
	internalV, externalV := verdict{code: verdictDrop}, verdict{code: verdictDrop}
	if !hasEndpoints {
		internalV = gotoVerdict(rejectChain)
		externalV = internalV
	}

	ipElem := func(container string, ip netip.Addr, v verdict, comment string) elem {
		return elem{container: container, key: []string{ip.String(), n.proto, port}, verdict: v,
			comment: comment, nkey: c.keyAddrProtoPort(ip, n.proto, sp.Port)}
	}
	gotoElem := func(container string, ip netip.Addr, chain string) elem {
		return ipElem(container, ip, gotoVerdict(chain), "")
	}
	o.elems = append(o.elems, elem{container: clusterIPsSet, isSet: true, key: []string{sp.ClusterIP.String()},
		nkey: string(c.addrBytes(sp.ClusterIP))})
	if hasInternal {
		o.elems = append(o.elems, gotoElem(serviceIPsMap, sp.ClusterIP, internalChain))
	} else {
		o.elems = append(o.elems, ipElem(noEndpointServicesMap, sp.ClusterIP, internalV, nameStr))
	}

	var extIPs, lbIPs []netip.Addr
	for _, ip := range sp.ExternalIPs {
		if c.inFamily(ip) {
			extIPs = append(extIPs, ip.Unmap())
		}
	}
	for _, ip := range sp.LoadBalancerIPs {
		if c.inFamily(ip) {
			lbIPs = append(lbIPs, ip.Unmap())
		}
	}
	var ranges []netip.Prefix
	for _, p := range sp.LoadBalancerSourceRanges {
		if c.inFamily(p.Addr()) {
			ranges = append(ranges, p.Masked())
		}
	}
	usesFW := len(lbIPs) > 0 && len(ranges) > 0
	for _, ip := range append(append([]netip.Addr(nil), extIPs...), lbIPs...) {
		if hasEndpoints {
			o.elems = append(o.elems, gotoElem(serviceIPsMap, ip, n.external))
		}
		if !hasExternal {
			o.elems = append(o.elems, ipElem(noEndpointServicesMap, ip, externalV, nameStr))
		}
	}
	if usesFW {
		for _, ip := range lbIPs {
			o.elems = append(o.elems, gotoElem(firewallIPsMap, ip, n.firewall))
		}
	}
	if sp.NodePort != 0 {
		npKey := []string{n.proto, strconv.Itoa(int(sp.NodePort))}
		nk := keyProtoPort(n.proto, sp.NodePort)
		if hasEndpoints {
			o.elems = append(o.elems, elem{container: serviceNodePortsMap, key: npKey, verdict: gotoVerdict(n.external), nkey: nk})
		}
		if !hasExternal {
			o.elems = append(o.elems, elem{container: noEndpointNodePortsMap, key: npKey,
				verdict: externalV, comment: nameStr, nkey: nk})
		}
	}
	// Hairpin, "ip . ip" for the masquerading chain: only local endpoints.
	// A pod reaching itself is a client on this node, and its traffic is
	// this node's to proxy; a remote endpoint's own traffic is proxied on
	// its node. Upstream's rule in every endpoint chain covers remote ones
	// too, for nothing: here they were 100,000 elements at 10,000 x 10,
	// 0.35 s of rendering and 0.2 s of kernel time in every full sync.
	for _, ep := range sp.AllEndpoints {
		if !ep.IsLocal {
			continue
		}
		a := ep.IP.Unmap()
		o.elems = append(o.elems, elem{container: hairpinSet, isSet: true, key: []string{a.String(), a.String()},
			nkey: string(append(c.addrBytes(a), c.addrBytes(a)...))})
	}

	if usesCluster {
		c.policyChain(o, sp, n.cluster, sp.ClusterEndpoints)
	}
	if usesLocal {
		c.policyChain(o, sp, n.local, sp.LocalEndpoints)
	}
	if hasInternal {
		// The masquerade rule goes first in the internal policy chain.
		c.prependInternalMasq(o, internalChain, sp)
	}
	if usesExternal {
		o.chains = append(o.chains, c.externalChain(n, extLocal, hasExternal, usesCluster, externalPolicyChain))
	}
	if usesFW {
		o.chains = append(o.chains, c.firewallChain(sp, n.firewall, ranges, lbIPs))
	}
	// Endpoint chains only where ClientIP affinity needs a place to record
	// the choice; otherwise the Service's chain DNATs directly.
	for _, ep := range sp.AllEndpoints {
		if sp.SessionAffinity {
			o.chains = append(o.chains, c.endpointChain(sp, n.proto, ep))
			o.affinity = append(o.affinity, affinitySet{
				name:    affinitySetPrefix + endpointNameBase(sp.Name, n.proto, ep),
				timeout: time.Duration(sp.StickySeconds) * time.Second,
			})
		}
	}
	return o, nil
}

// prependInternalMasq masquerades off-cluster (or all, with MasqueradeAll)
// traffic to the ClusterIP, in case the reply would bypass this node.
func (c *renderCtx) prependInternalMasq(o *svcObjects, chain string, sp *state.ServicePort) {
	if !c.masqAll && len(c.localCIDRs) == 0 {
		return
	}
	b := c.rule().addrIs("daddr", sp.ClusterIP)
	if !c.masqAll {
		for _, p := range c.localCIDRs {
			b.addr("saddr", p, true)
		}
	}
	r := b.jump(markMasqChain)
	for i := range o.chains {
		if o.chains[i].name == chain {
			o.chains[i].rules = append([]rule{r}, o.chains[i].rules...)
			return
		}
	}
}

// policyChain adds the chain picking one of eps at random. Without affinity
// that is one rule reading the endpoints map (endpoint_maps.go), so endpoint
// changes never rewrite it. With ClientIP affinity: affinity lookups first,
// then a cascade as iptables' statistic rules (rule i of n matches with
// probability 1/(n-i), numgen random mod n-i == 0, the last always) going to
// endpoint chains that record the choice. Upstream's "numgen random mod n
// vmap {...}" needs an anonymous map per Service, and the kernel's cost of
// naming and finding those grows with their number (quadratic over a full
// sync).
func (c *renderCtx) policyChain(o *svcObjects, sp *state.ServicePort, name string, eps []state.Endpoint) {
	ch := chainSpec{name: name}
	if !sp.SessionAffinity {
		r, lb := c.mapDNAT(sp, name, eps)
		ch.rules = append(ch.rules, r)
		o.lbs = append(o.lbs, lb)
		o.chains = append(o.chains, ch)
		return
	}
	proto := strings.ToLower(string(sp.Protocol))
	for _, ep := range eps {
		base := endpointNameBase(sp.Name, proto, ep)
		ch.rules = append(ch.rules, c.rule().inSet("saddr", affinitySetPrefix+base).goTo(endpointChainPrefix+base))
	}
	for i, ep := range eps {
		b := c.rule()
		if i < len(eps)-1 {
			b.numgen(len(eps)-i, 0)
		}
		ch.rules = append(ch.rules, b.goTo(endpointChainPrefix+endpointNameBase(sp.Name, proto, ep)))
	}
	o.chains = append(o.chains, ch)
}

func (c *renderCtx) externalChain(n svcNames, extLocal, hasExternal, usesCluster bool, policyChain string) chainSpec {
	ch := chainSpec{name: n.external}
	if !extLocal {
		// Endpoints may be on other nodes: masquerade so replies come back.
		ch.rules = append(ch.rules, c.rule().jump(markMasqChain))
	} else if usesCluster {
		// The short-circuits need the cluster chain; a view without cluster
		// endpoints (inconsistent, but possible input) must not reference it.
		// Pod traffic to an external address behaves as if it went out to
		// the load balancer and came back: no traffic policy.
		for _, p := range c.localCIDRs {
			ch.rules = append(ch.rules, c.rule().addr("saddr", p, false).goTo(n.cluster).withComment("short-circuit pod traffic"))
		}
		ch.rules = append(ch.rules,
			c.rule().fibSaddrLocal().jump(markMasqChain).withComment("masquerade local traffic"),
			c.rule().fibSaddrLocal().goTo(n.cluster).withComment("short-circuit local traffic"))
	}
	if hasExternal {
		ch.rules = append(ch.rules, c.rule().goTo(policyChain))
	}
	return ch
}

// firewallChain drops sources outside loadBalancerSourceRanges; the node may
// reach a VIP it hosts itself (source = the VIP) when a range covers it.
// Upstream writes "ip saddr != { ranges } drop"; a return per range does the
// same (the chain is reached by goto from firewall-check) without an
// anonymous interval set per Service.
func (c *renderCtx) firewallChain(sp *state.ServicePort, name string, ranges []netip.Prefix, lbIPs []netip.Addr) chainSpec {
	sources := append([]netip.Prefix(nil), ranges...)
	allowFromNode := false
	for _, p := range sp.LoadBalancerSourceRanges {
		for _, ip := range c.nodeIPs {
			if p.Contains(ip) {
				allowFromNode = true
			}
		}
	}
	if allowFromNode {
		for _, ip := range lbIPs {
			sources = append(sources, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	ch := chainSpec{name: name}
	for _, p := range sources {
		if p.Bits() == 0 {
			ch.rules = append(ch.rules, c.rule().ret())
			return ch
		}
		ch.rules = append(ch.rules, c.rule().addr("saddr", p, false).ret())
	}
	ch.rules = append(ch.rules, c.rule().drop())
	return ch
}

// endpointChain exists only with ClientIP affinity: it records the choice
// and DNATs. Hairpin traffic is masqueraded by the masquerading chain.
func (c *renderCtx) endpointChain(sp *state.ServicePort, proto string, ep state.Endpoint) chainSpec {
	base := endpointNameBase(sp.Name, proto, ep)
	return chainSpec{name: endpointChainPrefix + base, rules: []rule{
		c.rule().update(affinitySetPrefix + base).done(),
		c.rule().dnat(proto, netip.AddrPortFrom(ep.IP.Unmap(), uint16(ep.Port))),
	}}
}
