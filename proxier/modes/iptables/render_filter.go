package iptables

import "strconv"

// serviceFilter writes one ServicePort's filter rules: REJECT when it has
// no endpoints at all (clients get "connection refused" at once), DROP
// when a Local policy leaves none on this node, the LB source-range drop,
// and the health check node port accept.
func (r *renderer) serviceFilter(st *syncState, s *svcInfo, hasInternal, hasExternal, usesFW bool) {
	f := &st.filterRls
	proto := []string{"-m", s.proto, "-p", s.proto}
	var internalTarget, internalComment, externalTarget, externalComment string
	if !s.sp.HasEndpoints {
		internalTarget, externalTarget = "REJECT", "REJECT"
		internalComment = quoted(s.comment + " has no endpoints")
		externalComment = internalComment
	} else {
		if !hasInternal {
			internalTarget, internalComment = "DROP", quoted(s.comment+" has no local endpoints")
		}
		if !hasExternal {
			externalTarget, externalComment = "DROP", quoted(s.comment+" has no local endpoints")
		}
	}
	if !hasInternal {
		f.write("-A", chainServices, "-m", "comment", "--comment", internalComment,
			proto, "-d", s.clusterIP, "--dport", s.port, "-j", internalTarget)
	}
	if !hasExternal {
		// Traffic that the EXT chain did not short-circuit.
		for _, ip := range s.externalIPs {
			f.write("-A", chainExternalServices, "-m", "comment", "--comment", externalComment,
				proto, "-d", ip, "--dport", s.port, "-j", externalTarget)
		}
	}
	if usesFW {
		for _, ip := range s.lbIPs {
			f.write("-A", chainProxyFirewall, "-m", "comment", "--comment", quoted(s.comment+" traffic not accepted by "+s.chains.fw),
				proto, "-d", ip, "--dport", s.port, "-j", "DROP")
		}
	}
	if !hasExternal {
		for _, ip := range s.lbIPs {
			f.write("-A", chainExternalServices, "-m", "comment", "--comment", externalComment,
				proto, "-d", ip, "--dport", s.port, "-j", externalTarget)
		}
		if s.nodePort != "" {
			f.write("-A", chainExternalServices, "-m", "comment", "--comment", externalComment,
				"-m", "addrtype", "--dst-type", "LOCAL", proto, "--dport", s.nodePort, "-j", externalTarget)
		}
	}
	if s.hcPort != "" {
		// Accept health checks whether or not this node has endpoints:
		// the answer (200 or 503) is what the load balancer needs.
		f.write("-A", chainNodePorts, "-m", "comment", "--comment", quoted(s.comment+" health check node port"),
			"-m", "tcp", "-p", "tcp", "--dport", s.hcPort, "-j", "ACCEPT")
	}
}

// forward writes KUBE-FORWARD, after all Services as upstream.
func (r *renderer) forward(st *syncState) {
	f := &st.filterRls
	mark := r.cfg.masqMark
	if !r.cfg.conntrackLiberal {
		// INVALID packets would otherwise reset connections (issues
		// 74839, 117924).
		f.write("-A", chainForward, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	}
	// Masquerade-marked traffic is forwarded even under a DROP policy, so
	// NodePorts work.
	f.write("-A", chainForward, "-m", "comment", "--comment", `"kubernetes forwarding rules"`,
		"-m", "mark", "--mark", mark+"/"+mark, "-j", "ACCEPT")
	f.write("-A", chainForward, "-m", "comment", "--comment", `"kubernetes forwarding conntrack rule"`,
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
}

// stickySeconds is the affinity timeout; out-of-range values fall back to
// the API default of 10800 instead of reaching iptables.
func stickySeconds(s int32) string {
	if s < 1 || s > 86400 {
		s = 10800
	}
	return strconv.Itoa(int(s))
}
