package census

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
)

// IPTablesBackends are the save commands of both iptables backends: a node
// runs one, but a leftover may sit in the other.
var IPTablesBackends = []string{"iptables-nft-save", "iptables-legacy-save"}

// IPTablesDump is an iptables-save dump: per table, its chains (in dump
// order) and its rules as saved ("-A CHAIN ...").
type IPTablesDump struct {
	Tables map[string]*IPTablesTable
}

// IPTablesTable is one table of a dump.
type IPTablesTable struct {
	Chains []string
	Rules  []string
}

// ParseIPTablesSave reads iptables-save output. Comments, COMMIT and
// counters are skipped; a rule or chain outside a table is an error.
func ParseIPTablesSave(text string) (IPTablesDump, error) {
	d := IPTablesDump{Tables: map[string]*IPTablesTable{}}
	var cur *IPTablesTable
	for n, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			cur = &IPTablesTable{}
			d.Tables[line[1:]] = cur
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "-A "):
			if cur == nil {
				return d, fmt.Errorf("iptables-save line %d: %q outside a table", n+1, line)
			}
			if line[0] == ':' {
				cur.Chains = append(cur.Chains, strings.Fields(line[1:])[0])
			} else {
				cur.Rules = append(cur.Rules, line)
			}
		}
	}
	return d, nil
}

// RuleCount is the number of rules in every table.
func (d IPTablesDump) RuleCount() int {
	n := 0
	for _, t := range d.Tables {
		n += len(t.Rules)
	}
	return n
}

// HasChain says whether table holds chain.
func (d IPTablesDump) HasChain(table, chain string) bool {
	t, ok := d.Tables[table]
	return ok && slices.Contains(t.Chains, chain)
}

// chainsWith lists table's chains named name or starting with prefix+"*".
func (d IPTablesDump) chainsWith(table string, names ...string) []string {
	t, ok := d.Tables[table]
	if !ok {
		return nil
	}
	var out []string
	for _, c := range t.Chains {
		for _, n := range names {
			if c == n || (strings.HasSuffix(n, "*") && strings.HasPrefix(c, strings.TrimSuffix(n, "*"))) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// Chains only kube-proxy's iptables mode makes (upstream's and ours), and
// the ones only its IPVS mode makes beside its virtual servers. Both modes
// make KUBE-SERVICES, KUBE-POSTROUTING and KUBE-MARK-MASQ, and the kubelet
// makes KUBE-FIREWALL and KUBE-KUBELET-CANARY in any mode: none of those
// tells the modes apart, so a KUBE-SERVICES with neither set beside it
// counts as iptables mode (the mode that owns the name).
var (
	iptablesModeChains = []string{"KUBE-SVC-*", "KUBE-SEP-*", "KUBE-EXT-*", "KUBE-SVL-*", "KUBE-FW-*", "KUBE-SVCB-*", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES"}
	ipvsModeChains     = []string{"KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER"}
)

// iptablesState says which of kube-proxy's modes one backend's dump holds
// state of: "iptables", "ipvs" (its iptables half), both or neither, with
// what was seen. ipvsKernel says the kernel holds IPVS state (virtual
// servers, kube-ipvs0): then a KUBE-SERVICES alone is the IPVS mode's
// (met while it is still writing its other chains), and only the chains
// of iptables mode alone are an iptables mode's.
func iptablesState(backend string, d IPTablesDump, ipvsKernel bool) (modes []string, evidence string) {
	var svc, ipt, ipvs []string
	for _, table := range []string{"nat", "filter"} {
		if d.HasChain(table, "KUBE-SERVICES") {
			svc = append(svc, table)
		}
		ipt = append(ipt, d.chainsWith(table, iptablesModeChains...)...)
		ipvs = append(ipvs, d.chainsWith(table, ipvsModeChains...)...)
	}
	if len(svc) == 0 && len(ipt) == 0 && len(ipvs) == 0 {
		return nil, ""
	}
	var seen []string
	if len(svc) > 0 {
		seen = append(seen, "KUBE-SERVICES in "+strings.Join(svc, ", "))
	}
	if len(ipt) > 0 {
		seen = append(seen, summarize(ipt))
	}
	if len(ipvs) > 0 {
		seen = append(seen, summarize(ipvs))
	}
	ipvsOwned := len(ipvs) > 0 || ipvsKernel
	if len(ipt) > 0 || (len(svc) > 0 && !ipvsOwned) {
		modes = append(modes, clusters.ModeIPTables)
	}
	if len(ipvs) > 0 || (len(svc) > 0 && len(ipt) == 0 && ipvsKernel) {
		modes = append(modes, clusters.ModeIPVS)
	}
	return modes, backend + ": " + strings.Join(seen, "; ")
}

// summarize names up to three chains and how many more there are.
func summarize(chains []string) string {
	slices.Sort(chains)
	chains = slices.Compact(chains)
	if len(chains) <= 3 {
		return strings.Join(chains, ", ")
	}
	return fmt.Sprintf("%s and %d more chains", strings.Join(chains[:3], ", "), len(chains)-3)
}

// readIPTables reads both backends on node. A backend whose save command
// is missing holds nothing (a node image may ship one); any other failure
// is an error.
func readIPTables(ctx context.Context, c clusters.Cluster, node string) (map[string]IPTablesDump, error) {
	out := map[string]IPTablesDump{}
	for _, save := range IPTablesBackends {
		b, err := c.ExecOnNode(ctx, node, save)
		if err != nil {
			if notFound(b, err) {
				continue
			}
			return nil, fmt.Errorf("node %s: %s: %w", node, save, err)
		}
		d, err := ParseIPTablesSave(string(b))
		if err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", node, save, err)
		}
		out[strings.TrimSuffix(save, "-save")] = d
	}
	return out, nil
}

// notFound says whether a command failed because it is not on the node.
func notFound(out []byte, err error) bool {
	s := strings.ToLower(string(out) + " " + err.Error())
	return strings.Contains(s, "executable file not found") || strings.Contains(s, "no such file or directory") || strings.Contains(s, "not found")
}
