package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/klog/v2"
)

// topLevelChains are the fixed chains of each table, as upstream's
// CleanupLeftovers lists them.
var topLevelChains = map[string][]string{
	tableNAT:    {chainServices, chainNodePorts, chainPostrouting, chainMarkMasq, chainCanary},
	tableFilter: {chainServices, chainExternalServices, chainForward, chainNodePorts, chainProxyFirewall, chainCanary},
}

// prefixXLB is the local-policy chain of kube-proxy before 1.24: removed
// too, so Cleanup also clears what an old upstream left.
const prefixXLB = "KUBE-XLB-"

// Cleanup removes every rule and chain this mode (or upstream kube-proxy)
// creates in nat, filter and mangle: first any rule elsewhere jumping into
// them, then the chains in one iptables-restore per table. Safe to run
// twice; the next Sync is full.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.needFull, p.chains, p.hashes = true, nil, nil
	var errs []error
	for _, t := range []string{tableNAT, tableFilter} {
		if err := p.cleanupTable(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("iptables cleanup of table %s: %w", t, err))
		}
	}
	if err := p.runner.DeleteChain(ctx, tableMangle, chainCanary); err != nil {
		errs = append(errs, fmt.Errorf("iptables cleanup of mangle canary: %w", err))
	}
	return errors.Join(errs...)
}

// FixedChains are the chains of each table this mode always writes, for a
// mode that shares them to keep (Options.KeepChains) when cleaning up.
func FixedChains() map[string][]string {
	out := map[string][]string{}
	for t, cs := range topLevelChains {
		out[t] = slices.Clone(cs)
	}
	return out
}

func (p *Proxier) ours(table, chain string) bool {
	if slices.Contains(p.opts.KeepChains[table], chain) {
		return false
	}
	if slices.Contains(topLevelChains[table], chain) || isServiceChain(chain) || strings.HasPrefix(chain, prefixXLB) {
		return true
	}
	// KUBE-FIREWALL is kubelet's too: only ours when we wrote it.
	return table == tableFilter && chain == chainKubeletFirewall && p.r.localhostNodePorts()
}

func (p *Proxier) cleanupTable(ctx context.Context, table string) error {
	data, err := p.runner.Save(ctx, table)
	if err != nil {
		return err
	}
	del := map[string]bool{}
	for _, c := range chainsIn(data) {
		if p.ours(table, c) {
			del[c] = true
		}
	}
	if len(del) == 0 {
		return nil
	}
	// Unlink: rules in chains we keep (PREROUTING, INPUT, ...) that jump
	// into chains we delete, whatever their exact form or version.
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		chain, rule, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "-A "), " ")
		if !ok || !strings.HasPrefix(sc.Text(), "-A ") || del[chain] || !del[target(rule)] {
			continue
		}
		args := fields(rule)
		for i, a := range args {
			args[i] = strings.Trim(a, `"`)
		}
		klog.V(2).InfoS("Removing jump rule", "table", table, "chain", chain, "rule", rule)
		if err := p.runner.DeleteRule(ctx, table, chain, args...); err != nil {
			errs = append(errs, fmt.Errorf("delete rule %q in %s: %w", rule, chain, err))
		}
	}
	names := make([]string, 0, len(del))
	for c := range del {
		names = append(names, c)
	}
	slices.Sort(names)
	// One transaction on legacy; bounded ones on nft, where a single
	// transaction over 100,000 chains would take hours (transactions.go).
	in := deleteChains(nil, table, names, p.r.cfg.txnLines)
	if err := p.runner.Restore(ctx, in, RestoreFlags{Counters: true}); err != nil {
		errs = append(errs, err)
	}
	klog.InfoS("Removed iptables chains", "table", table, "chains", len(names))
	return errors.Join(errs...)
}
