package nftables

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// rule is one rule of a per-service chain.
type rule struct {
	text    string
	comment string
}

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
	value     string // "" for sets
	comment   string
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

	var internalVerdict, externalVerdict string
	if !hasEndpoints {
		internalVerdict, externalVerdict = "goto "+rejectChain, "goto "+rejectChain
	} else {
		if !hasInternal {
			internalVerdict = "drop"
		}
		if !hasExternal {
			externalVerdict = "drop"
		}
	}

	ipKey := func(ip string) []string { return []string{ip, n.proto, port} }
	o.elems = append(o.elems, elem{container: clusterIPsSet, isSet: true, key: []string{sp.ClusterIP.String()}})
	if hasInternal {
		o.elems = append(o.elems, elem{container: serviceIPsMap, key: ipKey(sp.ClusterIP.String()), value: "goto " + internalChain})
	} else {
		o.elems = append(o.elems, elem{container: noEndpointServicesMap, key: ipKey(sp.ClusterIP.String()), value: internalVerdict, comment: nameStr})
	}

	var extIPs, lbIPs []string
	for _, ip := range sp.ExternalIPs {
		if c.inFamily(ip) {
			extIPs = append(extIPs, ip.String())
		}
	}
	for _, ip := range sp.LoadBalancerIPs {
		if c.inFamily(ip) {
			lbIPs = append(lbIPs, ip.String())
		}
	}
	var ranges []string
	for _, p := range sp.LoadBalancerSourceRanges {
		if c.inFamily(p.Addr()) {
			ranges = append(ranges, p.Masked().String())
		}
	}
	usesFW := len(lbIPs) > 0 && len(ranges) > 0
	for _, ip := range append(append([]string(nil), extIPs...), lbIPs...) {
		if hasEndpoints {
			o.elems = append(o.elems, elem{container: serviceIPsMap, key: ipKey(ip), value: "goto " + n.external})
		}
		if !hasExternal {
			o.elems = append(o.elems, elem{container: noEndpointServicesMap, key: ipKey(ip), value: externalVerdict, comment: nameStr})
		}
	}
	if usesFW {
		for _, ip := range lbIPs {
			o.elems = append(o.elems, elem{container: firewallIPsMap, key: ipKey(ip), value: "goto " + n.firewall})
		}
	}
	if sp.NodePort != 0 {
		npKey := []string{n.proto, strconv.Itoa(int(sp.NodePort))}
		if hasEndpoints {
			o.elems = append(o.elems, elem{container: serviceNodePortsMap, key: npKey, value: "goto " + n.external})
		}
		if !hasExternal {
			o.elems = append(o.elems, elem{container: noEndpointNodePortsMap, key: npKey, value: externalVerdict, comment: nameStr})
		}
	}

	if usesCluster {
		o.chains = append(o.chains, c.policyChain(sp, n.cluster, sp.ClusterEndpoints))
	}
	if usesLocal {
		o.chains = append(o.chains, c.policyChain(sp, n.local, sp.LocalEndpoints))
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
	for _, ep := range sp.AllEndpoints {
		o.chains = append(o.chains, c.endpointChain(sp, n.proto, ep))
		if sp.SessionAffinity {
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
	var r rule
	switch {
	case c.masqAll:
		r.text = fmt.Sprintf("%s daddr %s jump %s", c.ipX, sp.ClusterIP, markMasqChain)
	case c.ifNotLocal != "":
		r.text = fmt.Sprintf("%s daddr %s %s jump %s", c.ipX, sp.ClusterIP, c.ifNotLocal, markMasqChain)
	default:
		return
	}
	for i := range o.chains {
		if o.chains[i].name == chain {
			o.chains[i].rules = append([]rule{r}, o.chains[i].rules...)
			return
		}
	}
}

// policyChain: affinity lookups first, then a random pick of one endpoint.
func (c *renderCtx) policyChain(sp *state.ServicePort, name string, eps []state.Endpoint) chainSpec {
	ch := chainSpec{name: name}
	proto := strings.ToLower(string(sp.Protocol))
	var picks []string
	for i, ep := range eps {
		base := endpointNameBase(sp.Name, proto, ep)
		if sp.SessionAffinity {
			ch.rules = append(ch.rules, rule{text: fmt.Sprintf("%s saddr @%s%s goto %s%s", c.ipX, affinitySetPrefix, base, endpointChainPrefix, base)})
		}
		picks = append(picks, fmt.Sprintf("%d : goto %s%s", i, endpointChainPrefix, base))
	}
	ch.rules = append(ch.rules, rule{text: fmt.Sprintf("numgen random mod %d vmap { %s }", len(eps), strings.Join(picks, " , "))})
	return ch
}

func (c *renderCtx) externalChain(n svcNames, extLocal, hasExternal, usesCluster bool, policyChain string) chainSpec {
	ch := chainSpec{name: n.external}
	if !extLocal {
		// Endpoints may be on other nodes: masquerade so replies come back.
		ch.rules = append(ch.rules, rule{text: "jump " + markMasqChain})
	} else if usesCluster {
		// The short-circuits need the cluster chain; a view without cluster
		// endpoints (inconsistent, but possible input) must not reference it.
		if c.ifLocal != "" {
			// Pod traffic to an external address behaves as if it went out
			// to the load balancer and came back: no traffic policy.
			ch.rules = append(ch.rules, rule{text: c.ifLocal + " goto " + n.cluster, comment: "short-circuit pod traffic"})
		}
		ch.rules = append(ch.rules,
			rule{text: "fib saddr type local jump " + markMasqChain, comment: "masquerade local traffic"},
			rule{text: "fib saddr type local goto " + n.cluster, comment: "short-circuit local traffic"})
	}
	if hasExternal {
		ch.rules = append(ch.rules, rule{text: "goto " + policyChain})
	}
	return ch
}

// firewallChain drops sources outside loadBalancerSourceRanges; the node may
// reach a VIP it hosts itself (source = the VIP) when a range covers it.
func (c *renderCtx) firewallChain(sp *state.ServicePort, name string, ranges, lbIPs []string) chainSpec {
	sources := append([]string(nil), ranges...)
	allowFromNode := false
	for _, p := range sp.LoadBalancerSourceRanges {
		for _, ip := range c.nodeIPs {
			if p.Contains(ip) {
				allowFromNode = true
			}
		}
	}
	if allowFromNode {
		sources = append(sources, lbIPs...)
	}
	return chainSpec{name: name, rules: []rule{{text: fmt.Sprintf("%s saddr != { %s } drop", c.ipX, strings.Join(sources, ", "))}}}
}

func (c *renderCtx) endpointChain(sp *state.ServicePort, proto string, ep state.Endpoint) chainSpec {
	base := endpointNameBase(sp.Name, proto, ep)
	ch := chainSpec{name: endpointChainPrefix + base}
	// Hairpin: a pod reaching itself through the Service must be SNATed.
	ch.rules = append(ch.rules, rule{text: fmt.Sprintf("%s saddr %s jump %s", c.ipX, ep.IP, markMasqChain)})
	if sp.SessionAffinity {
		ch.rules = append(ch.rules, rule{text: fmt.Sprintf("update @%s%s { %s saddr }", affinitySetPrefix, base, c.ipX)})
	}
	ch.rules = append(ch.rules, rule{text: fmt.Sprintf("meta l4proto %s dnat to %s", proto, ep.String())})
	return ch
}
