package iptables

import (
	"context"
	"fmt"
)

// jump is a rule in a built-in chain leading to one of ours. These cannot
// be part of the restore: we must not own all of PREROUTING etc.
type jump struct {
	table, from, to, comment string
	extra                    []string
}

var newConn = []string{"-m", "conntrack", "--ctstate", "NEW"}

// jumps are upstream's iptablesJumpChains, in upstream's order; each is
// inserted at the top, so the last one ends up first.
var jumps = []jump{
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
var kubeletJumps = []jump{
	{tableFilter, "INPUT", chainKubeletFirewall, "", nil},
	{tableFilter, "OUTPUT", chainKubeletFirewall, "", nil},
}

func (j jump) rule() []string {
	r := append([]string{}, j.extra...)
	if j.comment != "" {
		r = append(r, "-m", "comment", "--comment", j.comment)
	}
	return append(r, "-j", j.to)
}

// ensureJumps creates our top-level chains, the canaries and the jumps to
// them. Run on every full sync: cheap enough there, and it repairs a
// jump someone deleted.
func (p *Proxier) ensureJumps(ctx context.Context) error {
	all := jumps
	if p.r.localhostNodePorts() {
		all = append(append([]jump{}, jumps...), kubeletJumps...)
	}
	for _, j := range all {
		if err := p.runner.EnsureChain(ctx, j.table, j.to); err != nil {
			return fmt.Errorf("ensure chain %s in %s: %w", j.to, j.table, err)
		}
		if err := p.runner.EnsureRule(ctx, j.table, j.from, j.rule()...); err != nil {
			return fmt.Errorf("ensure jump %s -> %s in %s: %w", j.from, j.to, j.table, err)
		}
	}
	for _, t := range []string{tableMangle, tableNAT, tableFilter} {
		if err := p.runner.EnsureChain(ctx, t, chainCanary); err != nil {
			return fmt.Errorf("ensure canary chain in %s: %w", t, err)
		}
	}
	return nil
}
