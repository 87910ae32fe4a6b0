package ipvs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
)

// Cleanup removes every virtual server (but those in ExcludeCIDRs),
// kube-ipvs0, this mode's iptables chains and the jumps to them, and its
// ipsets, as `kube-proxy --cleanup` does for IPVS. Safe to run twice; on
// a kernel without ip_vs the IPVS part is skipped, the rest still runs.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.needFull = true
	p.reset()
	p.graceful = newGraceful(p.opts.GracefulTimeout, p.opts.Now)
	var errs []error
	if err := p.cleanupIPVS(); err != nil {
		errs = append(errs, fmt.Errorf("ipvs cleanup of virtual servers: %w", err))
	}
	if err := p.opts.Links.DeleteDummy(dummyDevice); err != nil {
		errs = append(errs, fmt.Errorf("ipvs cleanup of %s: %w", dummyDevice, err))
	}
	for _, t := range []string{tableNAT, tableFilter} {
		if err := p.cleanupTable(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("ipvs cleanup of iptables table %s: %w", t, err))
		}
	}
	// After iptables: a set still referenced by a rule cannot go.
	for _, s := range setInfo {
		if err := p.opts.IPSet.Destroy(s.name); err != nil {
			errs = append(errs, fmt.Errorf("ipvs cleanup of ipset %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Proxier) cleanupIPVS() error {
	if p.ipvs == nil {
		if err := kernelHasIPVS(); err != nil {
			klog.V(2).InfoS("No IPVS in this kernel: no virtual server to remove", "reason", err)
			return nil
		}
	}
	h, err := p.handle()
	if err != nil {
		return err
	}
	if _, real := h.(*Handle); real {
		if err := stopLeftExpirer(p.opts.NetNS); err != nil {
			return err
		}
	}
	if len(p.opts.ExcludeCIDRs) == 0 {
		return h.Flush()
	}
	list, err := h.GetServices()
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range list {
		a, _ := netip.AddrFromSlice(s.Address)
		if s.FWMark == 0 && p.excluded(a.Unmap()) {
			continue
		}
		if err := h.DelService(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FixedChains are the iptables chains of each table this mode writes, for
// a mode that shares them to keep (Options.KeepChains) when cleaning up.
func FixedChains() map[string][]string {
	out := map[string][]string{}
	for t, cs := range ourChains {
		out[t] = slices.Clone(cs)
	}
	return out
}

// cleanupTable unlinks every rule jumping into our chains (whatever its
// exact form) and deletes the chains in one iptables-restore.
func (p *Proxier) cleanupTable(ctx context.Context, table string) error {
	data, err := p.opts.Runner.Save(ctx, table)
	if err != nil {
		return err
	}
	del := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	var appends []string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			if f := strings.Fields(line[1:]); len(f) > 0 && slices.Contains(ourChains[table], f[0]) &&
				!slices.Contains(p.opts.KeepChains[table], f[0]) {
				del[f[0]] = true
			}
		}
		if strings.HasPrefix(line, "-A ") {
			appends = append(appends, line)
		}
	}
	if len(del) == 0 {
		return nil
	}
	// The jumps go in the same iptables-restore as the chains: one exec
	// for the table. One `iptables -C`/`-D` pair per jump cost 60 s of
	// the removal in the kernel VM under TCG (about 2 s per exec) and ran
	// into the removal's 1-minute timeout.
	var jumps []string
	for _, line := range appends {
		args := splitRule(strings.TrimPrefix(line, "-A "))
		if len(args) < 2 || del[args[0]] || !del[ruleTarget(args)] {
			continue
		}
		klog.V(2).InfoS("Removing jump rule", "table", table, "rule", line)
		jumps = append(jumps, "-D "+strings.TrimPrefix(line, "-A "))
	}
	var in bytes.Buffer
	fmt.Fprintf(&in, "*%s\n", table)
	for _, j := range jumps {
		fmt.Fprintln(&in, j)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for c := range del {
			if !yield(c) {
				return
			}
		}
	})
	for _, c := range names {
		fmt.Fprintf(&in, ":%s - [0:0]\n", c)
	}
	for _, c := range names {
		fmt.Fprintf(&in, "-X %s\n", c)
	}
	in.WriteString("COMMIT\n")
	return p.opts.Runner.Restore(ctx, in.Bytes(), iptables.RestoreFlags{Counters: true})
}

// splitRule splits an iptables-save rule into words, unquoting "quoted
// words".
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, any := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQ, any = !inQ, true
		case c == ' ' && !inQ:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteByte(c)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

func ruleTarget(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" {
			return args[i+1]
		}
	}
	return ""
}
