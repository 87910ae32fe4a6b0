package iptables

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// topLevel writes the chains every ruleset has and their fixed rules.
func (r *renderer) topLevel(st *syncState) {
	for _, c := range []string{chainServices, chainExternalServices, chainForward, chainNodePorts, chainProxyFirewall} {
		st.filterChains.chain(c)
	}
	for _, c := range []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq} {
		st.natTopChains.chain(c)
	}
	mark := r.cfg.masqMark
	st.natMasq.write("-A", chainPostrouting, "-m", "mark", "!", "--mark", mark+"/"+mark, "-j", "RETURN")
	// Clear the mark so a packet that goes through the stack again is not
	// masqueraded twice.
	st.natMasq.write("-A", chainPostrouting, "-j", "MARK", "--xor-mark", mark)
	st.natMasq.write("-A", chainPostrouting, "-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`,
		"-j", "MASQUERADE", "--random-fully")
	st.natMasq.write("-A", chainMarkMasq, "-j", "MARK", "--or-mark", mark)
	if st.leaves != nil {
		r.bucketTree(st)
	}
	if r.localhostNodePorts() {
		// route_localnet opens 127.0.0.0/8 to the network (issue 90259);
		// this is upstream's (and kubelet's) mitigation.
		st.filterChains.chain(chainKubeletFirewall)
		st.filterRls.write("-A", chainKubeletFirewall, "-m", "comment", "--comment", `"block incoming localnet connections"`,
			"-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
	}
}

// localhostNodePorts is only possible for IPv4 (route_localnet).
func (r *renderer) localhostNodePorts() bool {
	return r.cfg.localhostNodePorts && r.cfg.family == v1.IPv4Protocol
}

// service writes one ServicePort: dispatch rules into KUBE-SERVICES and
// KUBE-NODEPORTS (always), filter rules (always) and its own chains into
// st.svcChains/svcRules, which render keeps or drops.
func (r *renderer) service(st *syncState, s *svcInfo) {
	sp := s.sp
	hasEndpoints := sp.HasEndpoints
	usesCluster := len(s.cluster) > 0
	usesLocal := len(s.local) > 0

	internalChain, internalEps := s.chains.svc, s.cluster
	if sp.InternalPolicyLocal {
		internalChain, internalEps = s.chains.svl, s.local
	}
	hasInternal := hasEndpoints && len(internalEps) > 0
	externalChain, externalEps := s.chains.svc, s.cluster
	if sp.ExternalPolicyLocal {
		externalChain, externalEps = s.chains.svl, s.local
	}
	hasExternal := hasEndpoints && len(externalEps) > 0
	// The EXT chain is needed even without external endpoints: it holds
	// the short-circuit for pod and host traffic.
	usesExt := hasEndpoints && s.externallyAccessible()
	lbChain := s.chains.ext
	usesFW := hasEndpoints && len(s.lbIPs) > 0 && len(s.sourceRanges) > 0
	if usesFW {
		lbChain = s.chains.fw
	}

	r.serviceFilter(st, s, hasInternal, hasExternal, usesFW)

	nat := &st.natTop
	proto := []string{"-m", s.proto, "-p", s.proto}
	if hasInternal {
		r.dispatch(st, s.clusterIP, "-m", "comment", "--comment", quoted(s.comment+" cluster IP"),
			proto, "-d", s.clusterIP, "--dport", s.port, "-j", internalChain)
	}
	if hasEndpoints {
		for _, ip := range s.externalIPs {
			r.dispatch(st, ip, "-m", "comment", "--comment", quoted(s.comment+" external IP"),
				proto, "-d", ip, "--dport", s.port, "-j", s.chains.ext)
		}
		for _, ip := range s.lbIPs {
			r.dispatch(st, ip, "-m", "comment", "--comment", quoted(s.comment+" loadbalancer IP"),
				proto, "-d", ip, "--dport", s.port, "-j", lbChain)
		}
		if s.nodePort != "" {
			// NodePorts are not subject to loadBalancerSourceRanges,
			// for better or worse, as upstream.
			nat.write("-A", chainNodePorts, "-m", "comment", "--comment", bare(s.comment),
				proto, "--dport", s.nodePort, "-j", s.chains.ext)
		}
	}

	chains, rules := &st.svcChains, &st.svcRules
	if hasInternal {
		match := []string{"-m", "comment", "--comment", quoted(s.comment + " cluster IP"), "-m", s.proto, "-p", s.proto,
			"-d", s.clusterIP, "--dport", s.port}
		if r.cfg.masqueradeAll {
			rules.write("-A", internalChain, match, "-j", chainMarkMasq)
		} else if st.det.implemented() {
			// Off-cluster traffic to a ClusterIP (a static route to the
			// Service range) may bounce off-node: masquerade it.
			rules.write("-A", internalChain, match, st.det.IfNotLocal, "-j", chainMarkMasq)
		}
	}
	if usesExt {
		r.externalChain(st, s, externalChain, hasExternal, usesCluster)
	}
	if usesFW {
		r.firewallChain(st, s)
	}
	if usesCluster {
		chains.chain(s.chains.svc)
		st.out.active[s.chains.svc] = struct{}{}
		r.toEndpoints(st, s, s.chains.svc, s.cluster)
	}
	if usesLocal {
		chains.chain(s.chains.svl)
		st.out.active[s.chains.svl] = struct{}{}
		r.toEndpoints(st, s, s.chains.svl, s.local)
	}
	comment := r.comment(st, bare(s.comment))
	for _, ep := range s.reachable {
		chains.chain(ep.chain)
		st.out.active[ep.chain] = struct{}{}
		// Hairpin: a pod reaching itself through the Service must be
		// masqueraded or the reply would bypass conntrack.
		rules.write("-A", ep.chain, comment, "-s", ep.ip, "-j", chainMarkMasq)
		var affinity []string
		if sp.SessionAffinity {
			affinity = []string{"-m", "recent", "--name", ep.chain, "--set"}
		}
		rules.write("-A", ep.chain, comment, affinity, proto, "-j", "DNAT", "--to-destination", ep.addr)
	}
}

// comment is "-m comment --comment text", left out in large clusters.
func (r *renderer) comment(st *syncState, text string) []string {
	if st.large {
		return nil
	}
	return []string{"-m", "comment", "--comment", text}
}

// epComment is `"ns/name:port -> ip:port"`, built only when written.
func (r *renderer) epComment(st *syncState, s *svcInfo, ep epInfo) []string {
	if st.large {
		return nil
	}
	return r.comment(st, quoted(s.comment+" -> "+ep.addr))
}

// externalChain writes KUBE-EXT-*: masquerade for policy Cluster; for
// policy Local the short-circuit of pod and host traffic to the cluster
// chain, then the local policy chain.
func (r *renderer) externalChain(st *syncState, s *svcInfo, policyChain string, hasExternal, usesCluster bool) {
	ext := s.chains.ext
	st.svcChains.chain(ext)
	st.out.active[ext] = struct{}{}
	rules := &st.svcRules
	if !s.sp.ExternalPolicyLocal {
		// Endpoints may be on other nodes: masquerade so replies return.
		rules.write("-A", ext, "-m", "comment", "--comment", quoted("masquerade traffic for "+s.comment+" external destinations"),
			"-j", chainMarkMasq)
	} else {
		if !usesCluster {
			// Only an inconsistent View gets here (endpoints somewhere,
			// none usable by policy Cluster): no short-circuit target.
			klog.V(2).InfoS("No cluster endpoints for the external short-circuit", "service", s.comment)
		}
		if st.det.implemented() && usesCluster {
			// Pod traffic to an external address is subject to neither
			// policy, as if it went out to a load balancer and back.
			rules.write("-A", ext, "-m", "comment", "--comment", quoted("pod traffic for "+s.comment+" external destinations"),
				st.det.IfLocal, "-j", s.chains.svc)
		}
		// Host traffic takes the external address as source: masquerade
		// it, and send it to any endpoint.
		rules.write("-A", ext, "-m", "comment", "--comment", quoted("masquerade LOCAL traffic for "+s.comment+" external destinations"),
			"-m", "addrtype", "--src-type", "LOCAL", "-j", chainMarkMasq)
		if usesCluster {
			rules.write("-A", ext, "-m", "comment", "--comment", quoted("route LOCAL traffic for "+s.comment+" external destinations"),
				"-m", "addrtype", "--src-type", "LOCAL", "-j", s.chains.svc)
		}
	}
	if hasExternal {
		rules.write("-A", ext, "-j", policyChain)
	}
}

// firewallChain writes KUBE-FW-*: sources in loadBalancerSourceRanges go
// on to KUBE-EXT-*; the rest falls through undNATed and is dropped by
// KUBE-PROXY-FIREWALL in filter.
func (r *renderer) firewallChain(st *syncState, s *svcInfo) {
	fw := s.chains.fw
	st.svcChains.chain(fw)
	st.out.active[fw] = struct{}{}
	rules := &st.svcRules
	head := []string{"-A", fw, "-m", "comment", "--comment", quoted(s.comment + " loadbalancer IP")}
	allowFromNode := false
	for _, cidr := range s.sourceRanges {
		rules.write(head, "-s", cidr.String(), "-j", s.chains.ext)
		for _, ip := range st.nodeIPs {
			if cidr.Contains(ip) {
				allowFromNode = true
			}
		}
	}
	// A VIP bound locally loops node traffic back with the VIP as source.
	if allowFromNode {
		for _, ip := range s.lbIPs {
			rules.write(head, "-s", ip, "-j", s.chains.ext)
		}
	}
	rules.write("-A", fw, "-m", "comment", "--comment", quoted("other traffic to "+s.comment+" will be dropped by KUBE-PROXY-FIREWALL"))
}

// toEndpoints writes a policy chain: affinity checks first, then the
// random spread, each rule taking 1/(remaining) of what reaches it.
func (r *renderer) toEndpoints(st *syncState, s *svcInfo, chain string, eps []epInfo) {
	rules := &st.svcRules
	if s.sp.SessionAffinity {
		seconds := stickySeconds(s.sp.StickySeconds)
		for _, ep := range eps {
			rules.write("-A", chain, r.epComment(st, s, ep),
				"-m", "recent", "--name", ep.chain, "--rcheck", "--seconds", seconds, "--reap", "-j", ep.chain)
		}
	}
	n := len(eps)
	for i, ep := range eps {
		var stat []string
		if i < n-1 {
			stat = []string{"-m", "statistic", "--mode", "random", "--probability", r.probability(n - i)}
		}
		rules.write("-A", chain, r.epComment(st, s, ep), stat, "-j", ep.chain)
	}
}

// tail writes what must come after every Service: the jump to
// KUBE-NODEPORTS last in KUBE-SERVICES, and KUBE-FORWARD.
func (r *renderer) tail(st *syncState) {
	const comment = `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`
	if r.cfg.nodePortAll {
		dest := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
		// Localhost NodePorts never work for IPv6 and only with
		// route_localnet for IPv4.
		if r.cfg.family == v1.IPv6Protocol {
			dest = append(dest, "!", "-d", "::1/128")
		} else if !r.localhostNodePorts() {
			dest = append(dest, "!", "-d", "127.0.0.0/8")
		}
		st.natTop.write("-A", chainServices, "-m", "comment", "--comment", comment, dest, "-j", chainNodePorts)
	} else {
		for _, ip := range r.cfg.nodePortIPs {
			ip, ok := familyAddr(ip, r.cfg.family)
			if !ok {
				continue
			}
			if ip.IsLoopback() && !r.localhostNodePorts() {
				klog.V(2).InfoS("Not serving NodePorts on a loopback address", "address", ip)
				continue
			}
			st.natTop.write("-A", chainServices, "-m", "comment", "--comment", comment, "-d", ip.String(), "-j", chainNodePorts)
		}
	}
	r.forward(st)
}
