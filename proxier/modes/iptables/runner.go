package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Runner is the seam between this mode and the kernel: the real one runs
// iptables binaries in a network namespace, Fake keeps tables in memory
// for unit tests.
type Runner interface {
	// Restore feeds input (one or more "*table ... COMMIT" blocks) to
	// iptables-restore.
	Restore(ctx context.Context, input []byte, flags RestoreFlags) error
	// Save returns iptables-save output for one table.
	Save(ctx context.Context, table string) ([]byte, error)
	// EnsureChain creates a chain unless it exists.
	EnsureChain(ctx context.Context, table, chain string) error
	// ChainExists reports whether chain exists in table.
	ChainExists(ctx context.Context, table, chain string) (bool, error)
	// EnsureRule inserts rule at the top of chain unless it is there.
	EnsureRule(ctx context.Context, table, chain string, rule ...string) error
	// DeleteRule removes rule from chain; a missing rule or chain is fine.
	DeleteRule(ctx context.Context, table, chain string, rule ...string) error
	// DeleteChain flushes and deletes chain; a missing chain is fine.
	DeleteChain(ctx context.Context, table, chain string) error
}

// RestoreFlags are iptables-restore options.
type RestoreFlags struct {
	// Flush replaces whole tables; without it only the chains named in
	// the input are touched (--noflush), which is what syncs use.
	Flush bool
	// Counters keeps packet counters of rewritten chains (--counters).
	Counters bool
	// Test only checks the input (--test).
	Test bool
}

// Exec runs the iptables binaries in network namespace NetNS.
type Exec struct {
	NetNS string
	// Family selects iptables or ip6tables.
	Family v1.IPFamily
	// Backend is "" (the installed iptables), "legacy" or "nft".
	Backend string
}

var _ Runner = &Exec{}

// binary is e.g. "ip6tables-nft-restore" for (IPv6, "nft", "-restore").
func (e *Exec) binary(suffix string) string {
	b := "iptables"
	if e.Family == v1.IPv6Protocol {
		b = "ip6tables"
	}
	if e.Backend != "" {
		b += "-" + e.Backend
	}
	return b + suffix
}

// waitArgs make a concurrent iptables user (kubelet, a CNI) wait up to 5 s
// for the xtables lock instead of failing, like upstream. (Upstream's -W
// poll interval is deprecated in iptables 1.8 and only prints a warning.)
var waitArgs = []string{"-w", "5"}

func (e *Exec) Restore(ctx context.Context, input []byte, flags RestoreFlags) error {
	args := append([]string{}, waitArgs...)
	if !flags.Flush {
		args = append(args, "--noflush")
	}
	if flags.Counters {
		args = append(args, "--counters")
	}
	if flags.Test {
		args = append(args, "--test")
	}
	cmd := netns.Cmd(e.NetNS, e.binary("-restore"), args...)
	cmd.Stdin = bytes.NewReader(input)
	out, err := run(ctx, cmd)
	if err != nil {
		return &RestoreError{Cmd: cmd.String(), Output: strings.TrimSpace(string(out)), Context: failedLines(out, input), Err: err}
	}
	return nil
}

func (e *Exec) Save(ctx context.Context, table string) ([]byte, error) {
	cmd := netns.Cmd(e.NetNS, e.binary("-save"), "-t", table)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := start(ctx, cmd); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func (e *Exec) iptables(ctx context.Context, table string, args ...string) ([]byte, error) {
	cmd := netns.Cmd(e.NetNS, e.binary(""), append(append(append([]string{}, waitArgs...), "-t", table), args...)...)
	out, err := run(ctx, cmd)
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// exitCode is the command's exit status, or -1 when it did not run.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func (e *Exec) ChainExists(ctx context.Context, table, chain string) (bool, error) {
	_, err := e.iptables(ctx, table, "-S", chain, "1")
	if err == nil {
		return true, nil
	}
	if exitCode(err) == 1 {
		return false, nil
	}
	return false, err
}

func (e *Exec) EnsureChain(ctx context.Context, table, chain string) error {
	ok, err := e.ChainExists(ctx, table, chain)
	if err != nil || ok {
		return err
	}
	if _, err := e.iptables(ctx, table, "-N", chain); err != nil {
		// Lost a race with another writer: fine if it exists now.
		if ok, _ := e.ChainExists(ctx, table, chain); ok {
			return nil
		}
		return err
	}
	return nil
}

func (e *Exec) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	if _, err := e.iptables(ctx, table, append([]string{"-C", chain}, rule...)...); err == nil {
		return nil
	} else if exitCode(err) != 1 {
		return err
	}
	_, err := e.iptables(ctx, table, append([]string{"-I", chain}, rule...)...)
	return err
}

func (e *Exec) DeleteRule(ctx context.Context, table, chain string, rule ...string) error {
	// Deleted one by one in case it was inserted twice.
	for range 10 {
		if _, err := e.iptables(ctx, table, append([]string{"-C", chain}, rule...)...); err != nil {
			if exitCode(err) == 1 {
				return nil
			}
			return err
		}
		if _, err := e.iptables(ctx, table, append([]string{"-D", chain}, rule...)...); err != nil {
			return err
		}
	}
	return nil
}

func (e *Exec) DeleteChain(ctx context.Context, table, chain string) error {
	ok, err := e.ChainExists(ctx, table, chain)
	if err != nil || !ok {
		return err
	}
	if _, err := e.iptables(ctx, table, "-F", chain); err != nil {
		return err
	}
	_, err = e.iptables(ctx, table, "-X", chain)
	return err
}

// RestoreError is a failed iptables-restore, with the input lines around
// the one it named so the log shows what was wrong.
type RestoreError struct {
	Cmd, Output, Context string
	Err                  error
}

func (e *RestoreError) Error() string {
	s := fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, e.Output)
	if e.Context != "" {
		s += "\n" + e.Context
	}
	return s
}

func (e *RestoreError) Unwrap() error { return e.Err }

var failedLine = regexp.MustCompile(`(?:line (\d+) failed|Error occurred at line: (\d+))`)

// failedLines extracts input lines n-2..n+2 for "line n failed".
func failedLines(out, input []byte) string {
	m := failedLine.FindSubmatch(out)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(string(m[1]) + string(m[2]))
	all := strings.Split(string(input), "\n")
	var b strings.Builder
	for i := max(n-3, 0); i < min(n+2, len(all)); i++ {
		mark := "   "
		if i == n-1 {
			mark = "=> "
		}
		fmt.Fprintf(&b, "%s%d: %s\n", mark, i+1, all[i])
	}
	return b.String()
}

// run runs cmd, killing it when ctx ends, and returns its combined output.
func run(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := start(ctx, cmd)
	return out.Bytes(), err
}

func start(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}
