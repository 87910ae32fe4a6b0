package iptables

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/klog/v2"
)

// Jump is a rule in a built-in chain leading to a chain of ours. These
// cannot be part of a mode's restore: it must not own all of PREROUTING
// etc. Both this mode and the IPVS mode (for its helper rules) ensure
// theirs with EnsureJumps.
type Jump struct {
	Table, From, To, Comment string
	// Match are the rule's matches before the comment (ctstate NEW).
	Match []string
}

// Rule is the jump's rule specification, without the chain.
func (j Jump) Rule() []string {
	r := slices.Clone(j.Match)
	if j.Comment != "" {
		r = append(r, "-m", "comment", "--comment", j.Comment)
	}
	return append(r, "-j", j.To)
}

// SaveLine is the jump as iptables-save prints it.
func (j Jump) SaveLine() string {
	return "-A " + j.From + " " + ruleText(j.Rule())
}

var newConn = []string{"-m", "conntrack", "--ctstate", "NEW"}

// jumps are upstream's iptablesJumpChains, in upstream's order; each is
// inserted at the top, so the last one ends up first.
var jumps = []Jump{
	{tableFilter, "INPUT", chainExternalServices, "kubernetes externally-visible service portals", newConn},
	{tableFilter, "FORWARD", chainExternalServices, "kubernetes externally-visible service portals", newConn},
	{tableFilter, "INPUT", chainNodePorts, "kubernetes health check service ports", nil},
	{tableFilter, "FORWARD", chainServices, "kubernetes service portals", newConn},
	{tableFilter, "OUTPUT", chainServices, "kubernetes service portals", newConn},
	{tableFilter, "FORWARD", chainForward, "kubernetes forwarding rules", nil},
	{tableFilter, "INPUT", chainProxyFirewall, "kubernetes load balancer firewall", newConn},
	{tableFilter, "OUTPUT", chainProxyFirewall, "kubernetes load balancer firewall", newConn},
	{tableFilter, "FORWARD", chainProxyFirewall, "kubernetes load balancer firewall", newConn},
	{tableNAT, "OUTPUT", chainServices, "kubernetes service portals", nil},
	{tableNAT, "PREROUTING", chainServices, "kubernetes service portals", nil},
	{tableNAT, "POSTROUTING", chainPostrouting, "kubernetes postrouting rules", nil},
}

// kubeletJumps duplicate kubelet's; only used with localhost NodePorts.
var kubeletJumps = []Jump{
	{tableFilter, "INPUT", chainKubeletFirewall, "", nil},
	{tableFilter, "OUTPUT", chainKubeletFirewall, "", nil},
}

// canaries are the empty chains whose loss tells a flushed table.
var canaries = map[string][]string{tableMangle: {chainCanary}, tableNAT: {chainCanary}, tableFilter: {chainCanary}}

// ensureJumps creates our top-level chains, the canaries and the jumps to
// them. Run on every full sync: it repairs a jump someone deleted. It
// returns each table as read before (nil where it could not be read), so
// the sync reads nat's chains from it instead of running iptables-save
// again.
func (p *Proxier) ensureJumps(ctx context.Context) (map[string][]byte, error) {
	all := jumps
	if p.r.localhostNodePorts() {
		all = append(slices.Clone(jumps), kubeletJumps...)
	}
	return EnsureJumps(ctx, p.runner, all, canaries)
}

// EnsureJumps creates the chains js jump to, the chains of extra (by
// table) and the jumps, where missing. It reads each table once and writes
// what is missing of it in one iptables-restore --noflush: ":CHAIN" for a
// chain that does not exist (for one that does it would flush it) and "-I"
// for each missing jump, in the order the one-by-one inserts of upstream
// would leave them. One or two execs per table instead of one to four per
// jump: upstream's way, on a node where none exists yet, is ~45 execs for
// the iptables mode and 11 for IPVS's helper rules; in the kernel VM
// (TCG) under the suite's load an exec costs 1-2 s, and a node leaving
// IPVS for iptables spent 95 s of its first sync here, serving every new
// connection through IPVS meanwhile. Where a table cannot be read, or the
// restore fails, that table is ensured one by one as upstream does.
//
// It returns each table's iptables-save output as read before any write,
// nil for a table it could not read.
func EnsureJumps(ctx context.Context, r Runner, js []Jump, extra map[string][]string) (map[string][]byte, error) {
	var tables []string
	for _, j := range js {
		if !slices.Contains(tables, j.Table) {
			tables = append(tables, j.Table)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(extra)) {
		if !slices.Contains(tables, t) {
			tables = append(tables, t)
		}
	}
	saved := map[string][]byte{}
	for _, table := range tables {
		var mine []Jump
		for _, j := range js {
			if j.Table == table {
				mine = append(mine, j)
			}
		}
		data, err := r.Save(ctx, table)
		if err == nil {
			saved[table] = data
			input := missingJumps(table, mine, extra[table], savedLines(data))
			if input == nil {
				continue
			}
			if err = r.Restore(ctx, input, RestoreFlags{}); err == nil {
				continue
			}
			klog.ErrorS(err, "Writing the jumps in one iptables-restore failed; ensuring them one by one", "table", table)
		} else {
			klog.V(2).InfoS("Reading iptables failed; checking the jumps one by one", "table", table, "err", err)
		}
		for _, j := range mine {
			if err := r.EnsureChain(ctx, table, j.To); err != nil {
				return saved, fmt.Errorf("ensure chain %s in %s: %w", j.To, table, err)
			}
			if err := r.EnsureRule(ctx, table, j.From, j.Rule()...); err != nil {
				return saved, fmt.Errorf("ensure jump %s -> %s in %s: %w", j.From, j.To, table, err)
			}
		}
		for _, c := range extra[table] {
			if err := r.EnsureChain(ctx, table, c); err != nil {
				return saved, fmt.Errorf("ensure chain %s in %s: %w", c, table, err)
			}
		}
	}
	return saved, nil
}

// missingJumps is the iptables-restore --noflush input that adds to table
// the chains (those js jump to, and chains) and the jumps of js that saved
// lacks; nil when it lacks none.
func missingJumps(table string, js []Jump, chains []string, saved map[string]bool) []byte {
	var b strings.Builder
	declared := map[string]bool{}
	declare := func(c string) {
		if !saved[":"+c] && !declared[c] {
			declared[c] = true
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
	}
	for _, j := range js {
		declare(j.To)
	}
	for _, c := range chains {
		declare(c)
	}
	inserts := 0
	for _, j := range js {
		if !saved[j.SaveLine()] {
			inserts++
			fmt.Fprintf(&b, "-I %s %s\n", j.From, ruleText(j.Rule()))
		}
	}
	if len(declared) == 0 && inserts == 0 {
		return nil
	}
	return []byte("*" + table + "\n" + b.String() + "COMMIT\n")
}

// savedLines indexes iptables-save output: its chains as ":NAME" and its
// rules as printed.
func savedLines(data []byte) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			name, _, _ = strings.Cut(name, " ")
			out[":"+name] = true
		} else if strings.HasPrefix(line, "-A ") {
			out[line] = true
		}
	}
	return out
}

// ruleText joins rule words as iptables-save would show them.
func ruleText(rule []string) string {
	w := make([]string, len(rule))
	for i, s := range rule {
		if strings.ContainsAny(s, " ") {
			s = `"` + s + `"`
		}
		w[i] = s
	}
	return strings.Join(w, " ")
}
