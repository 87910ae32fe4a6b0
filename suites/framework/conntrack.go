package framework

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
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

// ClearClosedConntrack deletes node's TCP entries in TIME_WAIT and returns
// how many went: connections that have closed, whose entries only wait out
// the timeout they had when they closed (120 s by default; lowering the
// sysctl does not shorten an entry already counting down). A spec that
// sets a limit above the node's entries starts from its own: leftovers of
// earlier specs that expire while it runs let the table drain below a
// limit the spec's load only just fills (the exhaustion spec read full on
// 893 of them at once, and under its limit 5 s later).
func (f *Framework) ClearClosedConntrack(ctx context.Context, node string) (uint64, error) {
	out, err := f.Cluster.ExecOnNode(ctx, node, "conntrack", "-D", "-p", "tcp", "--state", "TIME_WAIT")
	n, ok := deletedCount(string(out))
	if !ok {
		// conntrack exits 1 when nothing matched, saying "0 flow entries
		// have been deleted": only output without that line is a failure.
		return 0, fmt.Errorf("node %s: conntrack -D -p tcp --state TIME_WAIT: %v: %q", node, err, out)
	}
	return n, nil
}

// deletedCount reads conntrack -D's summary line, "conntrack v1.4.7
// (conntrack-tools): N flow entries have been deleted."
func deletedCount(text string) (uint64, bool) {
	const suffix = " flow entries have been deleted."
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		head, ok := strings.CutSuffix(line, suffix)
		if !ok {
			continue
		}
		fields := strings.Fields(head)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.ParseUint(fields[len(fields)-1], 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

// NodeConntrackLasting counts node's conntrack entries that will still be
// there after d, from `conntrack -L` (each line's third field is the
// seconds the entry has left). Entries left by earlier specs (TIME_WAIT
// of a churn's clients under the default 120 s, UDP flows) expire while
// a spec runs; a limit set above the raw count would then be out of reach
// of a load that only replaces them.
func (f *Framework) NodeConntrackLasting(ctx context.Context, node string, d time.Duration) (uint64, error) {
	out, err := f.Cluster.ExecOnNode(ctx, node, "conntrack", "-L")
	if err != nil {
		return 0, fmt.Errorf("node %s: conntrack -L: %w: %s", node, err, out)
	}
	return countLasting(string(out), d), nil
}

// countLasting counts the entries of conntrack -L's text whose timeout is
// over d. Lines that are no entry (the tool's summary on stderr, when an
// exec merges it) are skipped.
func countLasting(text string, d time.Duration) uint64 {
	var n uint64
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		if len(fields) < 4 {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue // not "proto protonum timeout ..."
		}
		left, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			continue
		}
		if time.Duration(left)*time.Second > d {
			n++
		}
	}
	return n
}
