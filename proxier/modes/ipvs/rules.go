package ipvs

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// Chain names are upstream's IPVS-mode ones.
const (
	chainServices         = "KUBE-SERVICES"
	chainPostrouting      = "KUBE-POSTROUTING"
	chainNodePort         = "KUBE-NODE-PORT"
	chainLoadBalancer     = "KUBE-LOAD-BALANCER"
	chainMarkMasq         = "KUBE-MARK-MASQ"
	chainForward          = "KUBE-FORWARD"
	chainProxyFirewall    = "KUBE-PROXY-FIREWALL"
	chainSourceRangesFW   = "KUBE-SOURCE-RANGES-FIREWALL"
	chainIPVSFilter       = "KUBE-IPVS-FILTER"
	chainIPVSOutFilter    = "KUBE-IPVS-OUT-FILTER"
	tableNAT, tableFilter = "nat", "filter"
)

// ourChains are upstream's iptablesChains, per table.
var ourChains = map[string][]string{
	tableNAT:    {chainServices, chainPostrouting, chainNodePort, chainLoadBalancer, chainMarkMasq},
	tableFilter: {chainForward, chainNodePort, chainProxyFirewall, chainSourceRangesFW, chainIPVSFilter, chainIPVSOutFilter},
}

// jumps are upstream's iptablesJumpChain.
var jumps = []iptables.Jump{
	{Table: tableNAT, From: "OUTPUT", To: chainServices, Comment: "kubernetes service portals"},
	{Table: tableNAT, From: "PREROUTING", To: chainServices, Comment: "kubernetes service portals"},
	{Table: tableNAT, From: "POSTROUTING", To: chainPostrouting, Comment: "kubernetes postrouting rules"},
	{Table: tableFilter, From: "FORWARD", To: chainForward, Comment: "kubernetes forwarding rules"},
	{Table: tableFilter, From: "INPUT", To: chainNodePort, Comment: "kubernetes health check rules"},
	{Table: tableFilter, From: "INPUT", To: chainProxyFirewall, Comment: "kube-proxy firewall rules"},
	{Table: tableFilter, From: "FORWARD", To: chainProxyFirewall, Comment: "kube-proxy firewall rules"},
	{Table: tableFilter, From: "INPUT", To: chainIPVSFilter, Comment: "kubernetes ipvs access filter"},
	{Table: tableFilter, From: "OUTPUT", To: chainIPVSOutFilter, Comment: "kubernetes ipvs access filter"},
}

// rules is the iptables-restore input of this mode. Every rule matches
// an ipset instead of an address, so the number of rules never depends
// on the Services: they are written on full syncs only.
type rules struct {
	data        []byte
	nat, filter int
}

type ruleWriter struct {
	buf bytes.Buffer
	n   int
}

func (w *ruleWriter) line(words ...string) {
	for i, s := range words {
		if i > 0 {
			w.buf.WriteByte(' ')
		}
		if strings.ContainsAny(s, " ") {
			s = `"` + s + `"`
		}
		w.buf.WriteString(s)
	}
	w.buf.WriteByte('\n')
	if len(words) > 0 && words[0] == "-A" {
		w.n++
	}
}

func (w *ruleWriter) raw(s string) {
	w.buf.WriteString(s)
	w.buf.WriteByte('\n')
}

func matchSet(set, dir string) []string {
	return []string{"-m", "comment", "--comment", setComment(set), "-m", "set", "--match-set", set, dir}
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// renderRules writes upstream's writeIptablesRules, with every ipset rule
// present even when its set is empty (a constant rule count), and
// without the per-LoadBalancer KUBE-IPVS-OUT-FILTER rules.
func (p *Proxier) renderRules(node *state.Node) rules {
	mark := fmt.Sprintf("%#08x", uint32(1)<<*p.opts.MasqueradeBit)
	lo := "127.0.0.0/8"
	if p.opts.Family == v1.IPv6Protocol {
		lo = "::1/128"
	}
	var nat, filter ruleWriter
	nat.line("*nat")
	for _, c := range ourChains[tableNAT] {
		nat.raw(":" + c + " - [0:0]")
	}
	a := func(chain string, words ...[]string) []string {
		return cat(append([][]string{{"-A", chain}}, words...)...)
	}
	j := func(target string, extra ...string) []string { return append([]string{"-j", target}, extra...) }

	nat.line(a(chainServices, []string{"-s", lo}, j("RETURN"))...)
	// Hairpin first, as upstream: an endpoint reaching itself is SNATed.
	nat.line(a(chainPostrouting, matchSet(setLoopBack, "dst,dst,src"), j("MASQUERADE"))...)
	nat.line(a(chainServices, matchSet(setLoadBalancer, "dst,dst"), j(chainLoadBalancer))...)
	nat.line(a(chainLoadBalancer, matchSet(setLoadBalancerLocal, "dst,dst"), j("RETURN"))...)
	for _, np := range []struct{ proto, local, all, dir string }{
		{"tcp", setNodePortLocalTCP, setNodePortTCP, "dst"},
		{"udp", setNodePortLocalUDP, setNodePortUDP, "dst"},
		{"sctp", setNodePortLocalSCTP, setNodePortSCTP, "dst,dst"},
	} {
		nat.line(a(chainNodePort, []string{"-p", np.proto}, matchSet(np.local, np.dir), j("RETURN"))...)
		nat.line(a(chainNodePort, []string{"-p", np.proto}, matchSet(np.all, np.dir), j(chainMarkMasq))...)
	}
	switch lm := p.opts.LocalDetect.Detector(p.opts.Family, node).IfNotLocal; {
	case p.opts.MasqueradeAll:
		nat.line(a(chainServices, matchSet(setClusterIP, "dst,dst"), j(chainMarkMasq))...)
	case lm != nil:
		// Off-cluster traffic to a ClusterIP may leave the node: SNAT it.
		nat.line(a(chainServices, matchSet(setClusterIP, "dst,dst"), lm, j(chainMarkMasq))...)
	default:
		// The node reaching a VIP picks the VIP as source: SNAT those.
		nat.line(a(chainServices, matchSet(setClusterIP, "src,dst"), j(chainMarkMasq))...)
	}
	nat.line(a(chainServices, matchSet(setExternalIP, "dst,dst"), j(chainMarkMasq))...)
	// Upstream's first externalIP ACCEPT also matches "! --physdev-is-in";
	// it is left out so the rules load without xt_physdev. Both rules only
	// end the nat traversal early.
	for _, set := range []string{setExternalIP, setExternalIPLocal} {
		nat.line(a(chainServices, matchSet(set, "dst,dst"), []string{"-m", "addrtype", "!", "--src-type", "LOCAL"}, j("ACCEPT"))...)
		nat.line(a(chainServices, matchSet(set, "dst,dst"), []string{"-m", "addrtype", "--dst-type", "LOCAL"}, j("ACCEPT"))...)
	}
	nat.line(a(chainServices, []string{"-m", "addrtype", "--dst-type", "LOCAL"}, j(chainNodePort))...)
	nat.line(a(chainLoadBalancer, j(chainMarkMasq))...)
	nat.line(a(chainServices, []string{"-m", "set", "--match-set", setClusterIP, "dst,dst"}, j("ACCEPT"))...)
	nat.line(a(chainServices, []string{"-m", "set", "--match-set", setLoadBalancer, "dst,dst"}, j("ACCEPT"))...)
	nat.line(a(chainPostrouting, []string{"-m", "mark", "!", "--mark", mark + "/" + mark}, j("RETURN"))...)
	nat.line(a(chainPostrouting, j("MARK", "--xor-mark", mark))...)
	nat.line(a(chainPostrouting, []string{"-m", "comment", "--comment", "kubernetes service traffic requiring SNAT"}, j("MASQUERADE", "--random-fully"))...)
	nat.line(a(chainMarkMasq, j("MARK", "--or-mark", mark))...)
	nat.line("COMMIT")

	filter.line("*filter")
	for _, c := range ourChains[tableFilter] {
		filter.raw(":" + c + " - [0:0]")
	}
	filter.line(a(chainProxyFirewall, matchSet(setLoadBalancerFW, "dst,dst"), j(chainSourceRangesFW))...)
	filter.line(a(chainSourceRangesFW, matchSet(setLBSourceCIDR, "dst,dst,src"), j("RETURN"))...)
	filter.line(a(chainSourceRangesFW, matchSet(setLBSourceIP, "dst,dst,src"), j("RETURN"))...)
	filter.line(a(chainSourceRangesFW, j("DROP"))...)
	filter.line(a(chainForward, []string{"-m", "comment", "--comment", "kubernetes forwarding rules", "-m", "mark", "--mark", mark + "/" + mark}, j("ACCEPT"))...)
	filter.line(a(chainForward, []string{"-m", "comment", "--comment", "kubernetes forwarding conntrack rule", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"}, j("ACCEPT"))...)
	filter.line(a(chainNodePort, matchSet(setHealthCheckNodePort, "dst"), j("ACCEPT"))...)
	// Only Service ports are open on the VIPs (kubernetes#72236).
	for _, s := range []struct{ set, dir string }{
		{setLoadBalancer, "dst,dst"}, {setClusterIP, "dst,dst"}, {setExternalIP, "dst,dst"},
		{setExternalIPLocal, "dst,dst"}, {setHealthCheckNodePort, "dst"},
	} {
		filter.line(a(chainIPVSFilter, []string{"-m", "set", "--match-set", s.set, s.dir}, j("RETURN"))...)
	}
	filter.line(a(chainIPVSFilter, []string{"-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set", setIPVSIPs, "dst"}, j("REJECT"))...)
	filter.line("COMMIT")

	var out bytes.Buffer
	out.Write(nat.buf.Bytes())
	out.Write(filter.buf.Bytes())
	return rules{data: out.Bytes(), nat: nat.n, filter: filter.n}
}

// ensureJumps creates our chains and the jumps to them from the built-in
// chains, which the rules' restore does not write: one iptables-save and
// at most one iptables-restore per table (iptables.EnsureJumps; upstream's
// one-by-one way was measured at 11-13 s of the first sync in the kernel
// VM), never flushing a chain another mode still uses.
func (p *Proxier) ensureJumps(ctx context.Context) error {
	_, err := iptables.EnsureJumps(ctx, p.opts.Runner, jumps, nil)
	return err
}

// writeRules loads the rules; our chains are flushed and rewritten, the
// rest of the tables is left alone.
func (p *Proxier) writeRules(ctx context.Context, node *state.Node) (rules, error) {
	r := p.renderRules(node)
	if err := p.opts.Runner.Restore(ctx, r.data, iptables.RestoreFlags{Counters: true}); err != nil {
		return r, fmt.Errorf("iptables-restore of the IPVS helper rules: %w", err)
	}
	klog.V(3).InfoS("IPVS helper iptables rules written", "nat", r.nat, "filter", r.filter)
	return r, nil
}
