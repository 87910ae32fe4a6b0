package framework

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/suites/census"
)

// Rules is node's proxier state as text (the same commands as the failure
// dumps), for specs that check a Service got no rule at all.
func (f *Framework) Rules(ctx context.Context, node string) (string, error) {
	f.SkipWithoutNodeAccess()
	mode, err := f.nodeMode(node)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for _, cmd := range census.Dumps(mode) {
		b, err := f.Cluster.ExecOnNode(ctx, node, cmd...)
		if err != nil {
			return "", fmt.Errorf("node %s: rules: %w", node, err)
		}
		out.Write(b)
	}
	return out.String(), nil
}

// DeleteProxyRules deletes node's Service rules by hand, as an admin or a
// firewall reload would, and returns what it ran. Per mode, it deletes
// what upstream kube-proxy promises to recover from:
//
//   - iptables: every KUBE-* chain and every jump to one, in every table
//     and both iptables backends (upstream's own e2e test "should recreate
//     its iptables rules if they are deleted"); the canary chains go with
//     them, which is what kube-proxy watches for;
//   - nftables: the whole "kube-proxy" table (what `nft flush ruleset`
//     does to it); kube-proxy owns that table and rebuilds it on its next
//     full sync;
//   - ipvs: every virtual server (ipvsadm -C).
func (f *Framework) DeleteProxyRules(ctx context.Context, node string) (string, error) {
	f.SkipWithoutNodeAccess()
	mode, err := f.nodeMode(node)
	if err != nil {
		return "", err
	}
	switch mode {
	case clusters.ModeNFTables:
		return f.runOnNode(ctx, node, "nft", "delete", "table", "ip", "kube-proxy")
	case clusters.ModeIPVS:
		return f.runOnNode(ctx, node, "ipvsadm", "-C")
	}
	var ran []string
	for _, b := range []struct{ save, cmd string }{{"iptables-nft-save", "iptables-nft"}, {"iptables-legacy-save", "iptables-legacy"}} {
		dump, err := f.Cluster.ExecOnNode(ctx, node, b.save)
		if err != nil {
			return strings.Join(ran, "\n"), fmt.Errorf("node %s: %w", node, err)
		}
		script, err := kubeChainDeletion(string(dump), b.cmd)
		if err != nil {
			return strings.Join(ran, "\n"), fmt.Errorf("node %s: %s: %w", node, b.save, err)
		}
		if script == "" {
			continue
		}
		out, err := f.Cluster.ExecOnNode(ctx, node, "sh", "-c", script)
		ran = append(ran, script, string(out))
		if err != nil {
			return strings.Join(ran, "\n"), fmt.Errorf("node %s: delete KUBE-* chains: %w", node, err)
		}
	}
	if len(ran) == 0 {
		return "", fmt.Errorf("node %s: no KUBE-* chain in either iptables backend: nothing to delete", node)
	}
	return strings.Join(ran, "\n"), nil
}

// kubeChainDeletion is the shell script deleting the KUBE-* chains of an
// iptables-save dump with iptables command cmd: jumps into them first,
// then their rules, then the chains (a referenced chain cannot go).
func kubeChainDeletion(dump, cmd string) (string, error) {
	d, err := census.ParseIPTablesSave(dump)
	if err != nil {
		return "", err
	}
	var jumps, rules, chains []string
	for _, table := range slices.Sorted(maps.Keys(d.Tables)) {
		t := d.Tables[table]
		for _, chain := range t.Chains {
			if strings.HasPrefix(chain, "KUBE-") {
				rules = append(rules, fmt.Sprintf("%s -w -t %s -F %s || true", cmd, table, chain))
				chains = append(chains, fmt.Sprintf("%s -w -t %s -X %s || true", cmd, table, chain))
			}
		}
		for _, rule := range t.Rules {
			if !strings.HasPrefix(rule, "-A KUBE-") && strings.Contains(rule, "-j KUBE-") {
				jumps = append(jumps, fmt.Sprintf("%s -w -t %s -D %s || true", cmd, table, rule[3:]))
			}
		}
	}
	if len(chains) == 0 {
		return "", nil
	}
	return strings.Join(slices.Concat(jumps, rules, chains), "\n"), nil
}

func (f *Framework) runOnNode(ctx context.Context, node string, cmd ...string) (string, error) {
	out, err := f.Cluster.ExecOnNode(ctx, node, cmd...)
	ran := strings.Join(cmd, " ") + "\n" + string(out)
	if err != nil {
		return ran, fmt.Errorf("node %s: %w", node, err)
	}
	return ran, nil
}

func (f *Framework) nodeMode(node string) (string, error) {
	for _, n := range f.Cluster.Nodes() {
		if n.Name == node {
			return n.Mode, nil
		}
	}
	return "", fmt.Errorf("cluster %s: no node %q", f.Cluster.Name(), node)
}
