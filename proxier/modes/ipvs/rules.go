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

// jump is a rule in a built-in chain leading to one of ours.
type jump struct{ table, from, to, comment string }

// jumps are upstream's iptablesJumpChain.
var jumps = []jump{
	{tableNAT, "OUTPUT", chainServices, "kubernetes service portals"},
	{tableNAT, "PREROUTING", chainServices, "kubernetes service portals"},
	{tableNAT, "POSTROUTING", chainPostrouting, "kubernetes postrouting rules"},
	{tableFilter, "FORWARD", chainForward, "kubernetes forwarding rules"},
	{tableFilter, "INPUT", chainNodePort, "kubernetes health check rules"},
	{tableFilter, "INPUT", chainProxyFirewall, "kube-proxy firewall rules"},
	{tableFilter, "FORWARD", chainProxyFirewall, "kube-proxy firewall rules"},
	{tableFilter, "INPUT", chainIPVSFilter, "kubernetes ipvs access filter"},
	{tableFilter, "OUTPUT", chainIPVSOutFilter, "kubernetes ipvs access filter"},
}

func (j jump) rule() []string {
	return []string{"-m", "comment", "--comment", j.comment, "-j", j.to}
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
// chains, which the rules' restore does not write. It reads each table
// once and writes what is missing of it in one iptables-restore
// --noflush: ":CHAIN" for a chain that does not exist (for one that does
// it would flush it) and "-I" for each missing jump, in the order the
// one-by-one inserts upstream runs would leave them. One exec per table
// instead of one to three per jump: on a node leaving iptables mode, where
// none of ours exists yet, upstream's way is 11 execs, measured at 11-13 s
// of the first sync in the kernel VM (TCG) against ~1 s for the restore
// of every rule. Where a table cannot be read, or the restore fails, that
// table's jumps are checked one by one as upstream does.
func (p *Proxier) ensureJumps(ctx context.Context) error {
	for _, table := range []string{tableNAT, tableFilter} {
		var mine []jump
		for _, jp := range jumps {
			if jp.table == table {
				mine = append(mine, jp)
			}
		}
		lines, ok := p.savedLines(ctx, table)
		if ok {
			input := missingJumps(table, mine, lines)
			if input == nil {
				continue
			}
			err := p.opts.Runner.Restore(ctx, input, iptables.RestoreFlags{})
			if err == nil {
				continue
			}
			klog.ErrorS(err, "Writing the jumps in one iptables-restore failed; ensuring them one by one", "table", table)
		}
		for _, jp := range mine {
			if err := p.opts.Runner.EnsureChain(ctx, jp.table, jp.to); err != nil {
				return fmt.Errorf("ensure chain %s in %s: %w", jp.to, jp.table, err)
			}
			if err := p.opts.Runner.EnsureRule(ctx, jp.table, jp.from, jp.rule()...); err != nil {
				return fmt.Errorf("ensure jump %s -> %s in %s: %w", jp.from, jp.to, jp.table, err)
			}
		}
	}
	return nil
}

// missingJumps is the iptables-restore --noflush input that adds to table
// the chains and jumps of js that saved (savedLines) lacks; nil when it
// lacks none.
func missingJumps(table string, js []jump, saved map[string]bool) []byte {
	var w ruleWriter
	declared := map[string]bool{}
	for _, jp := range js {
		if !saved[":"+jp.to] && !declared[jp.to] {
			declared[jp.to] = true
			w.line(":"+jp.to, "-", "[0:0]")
		}
	}
	inserts := 0
	for _, jp := range js {
		if !saved[jp.saveLine()] {
			inserts++
			w.line(append([]string{"-I", jp.from}, jp.rule()...)...)
		}
	}
	if len(declared) == 0 && inserts == 0 {
		return nil
	}
	return append(append([]byte("*"+table+"\n"), w.buf.Bytes()...), "COMMIT\n"...)
}

// saveLine is the jump as iptables-save prints it.
func (j jump) saveLine() string {
	return fmt.Sprintf("-A %s -m comment --comment %q -j %s", j.from, j.comment, j.to)
}

// savedLines returns the chains (":NAME") and rules of table, and false
// when it cannot be read, so that everything is ensured the slow way.
func (p *Proxier) savedLines(ctx context.Context, table string) (map[string]bool, bool) {
	out := map[string]bool{}
	data, err := p.opts.Runner.Save(ctx, table)
	if err != nil {
		klog.V(2).InfoS("Reading iptables failed; checking the jumps one by one", "table", table, "err", err)
		return out, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			name, _, _ = strings.Cut(name, " ")
			out[":"+name] = true
		} else if strings.HasPrefix(line, "-A ") {
			out[line] = true
		}
	}
	return out, true
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
