package framework

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// EnvConntrackLowerHostLimit=1 lets the conntrack exhaustion spec lower
// nf_conntrack_max for a node that shares the host's kernel: one global
// value, so the whole machine's (restored afterwards). Without it such a
// node is skipped; a node of its own kernel (NODE_KERNELS=vm) needs no
// consent.
const EnvConntrackLowerHostLimit = "CONNTRACK_LOWER_HOST_LIMIT"

// LowerHostLimitFromEnv reads EnvConntrackLowerHostLimit with lookup.
func LowerHostLimitFromEnv(lookup func(string) (string, bool)) (bool, error) {
	v, _ := lookup(EnvConntrackLowerHostLimit)
	switch strings.TrimSpace(v) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, &ParamError{EnvConntrackLowerHostLimit, v, "1 or true to let the conntrack exhaustion spec lower the host's global nf_conntrack_max for the run (restored after), 0, false or nothing to skip it on nodes sharing the host's kernel"}
}

// ConntrackUsage is one reading of a node's conntrack table, from /proc
// as the node's network namespace sees it: what the proxier's
// proxyproof_conntrack_* metrics report, read the same way for any
// proxier (kube-proxy has no such metrics).
type ConntrackUsage struct {
	Entries, Limit                uint64
	InsertFailed, Drop, EarlyDrop uint64
}

// conntrackFiles are read in one exec: count, max, then the per-CPU
// statistics table.
var conntrackFiles = []string{"/proc/sys/net/netfilter/nf_conntrack_count", "/proc/sys/net/netfilter/nf_conntrack_max", "/proc/net/stat/nf_conntrack"}

// NodeConntrack reads node's conntrack usage.
func (f *Framework) NodeConntrack(ctx context.Context, node string) (ConntrackUsage, error) {
	out, err := f.Cluster.ExecOnNode(ctx, node, append([]string{"cat"}, conntrackFiles...)...)
	if err != nil {
		return ConntrackUsage{}, fmt.Errorf("node %s: conntrack usage: %w", node, err)
	}
	u, err := parseConntrack(string(out))
	if err != nil {
		return u, fmt.Errorf("node %s: conntrack usage: %w", node, err)
	}
	return u, nil
}

// parseConntrack reads cat's output of conntrackFiles. The statistics
// table is a header of column names, then one line of hexadecimal
// counters per CPU (the format prometheus/procfs reads for the proxier;
// here the text comes from another machine's exec, which procfs cannot
// take, so it is read by hand).
func parseConntrack(text string) (ConntrackUsage, error) {
	var u ConntrackUsage
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) < 4 {
		return u, fmt.Errorf("want count, max and the statistics table, got %q", text)
	}
	var err error
	if u.Entries, err = strconv.ParseUint(strings.TrimSpace(lines[0]), 10, 64); err != nil {
		return u, fmt.Errorf("nf_conntrack_count %q: %w", lines[0], err)
	}
	if u.Limit, err = strconv.ParseUint(strings.TrimSpace(lines[1]), 10, 64); err != nil {
		return u, fmt.Errorf("nf_conntrack_max %q: %w", lines[1], err)
	}
	header := strings.Fields(lines[2])
	sums := map[string]*uint64{"insert_failed": &u.InsertFailed, "drop": &u.Drop, "early_drop": &u.EarlyDrop}
	for _, line := range lines[3:] {
		fields := strings.Fields(line)
		if len(fields) != len(header) {
			return u, fmt.Errorf("statistics line %q: %d fields under a header of %d", line, len(fields), len(header))
		}
		for i, name := range header {
			if sum, ok := sums[name]; ok {
				v, err := strconv.ParseUint(fields[i], 16, 64)
				if err != nil {
					return u, fmt.Errorf("statistics %s %q: %w", name, fields[i], err)
				}
				*sum += v
			}
		}
	}
	return u, nil
}

// harnessPorts are the node ports the suite itself reaches a node on: the
// proxier's metrics and healthz, and a kernel-VM node's exec server.
const harnessPorts = "10249,10250,10256"

// ExemptHarnessFromConntrack makes node's kernel leave the suite's own
// traffic to harnessPorts untracked (raw table, CT --notrack, both
// directions), so the suite can still reach the node's exec, healthz and
// metrics while a spec fills its conntrack table; Service traffic is not
// touched. It returns the undo, to run whatever happens.
func (f *Framework) ExemptHarnessFromConntrack(ctx context.Context, node string) (undo func(context.Context) error, err error) {
	rule := []string{"-p", "tcp", "-m", "multiport", "--ports", harnessPorts, "-j", "CT", "--notrack"}
	var added []string
	undo = func(ctx context.Context) error {
		var errs []string
		for _, chain := range added {
			if _, err := f.Cluster.ExecOnNode(ctx, node, append([]string{"iptables", "-t", "raw", "-D", chain}, rule...)...); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("node %s: remove the conntrack exemption: %s", node, strings.Join(errs, "; "))
		}
		return nil
	}
	for _, chain := range []string{"PREROUTING", "OUTPUT"} {
		if _, err := f.Cluster.ExecOnNode(ctx, node, append([]string{"iptables", "-t", "raw", "-I", chain}, rule...)...); err != nil {
			return undo, fmt.Errorf("node %s: exempt the suite's own traffic from conntrack: %w", node, err)
		}
		added = append(added, chain)
	}
	return undo, nil
}
