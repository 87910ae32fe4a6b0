package ipvs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"
)

// The iptables half of leaving ipvs needs no ip_vs: upstream's jumps (their
// comments quoted, as iptables-save prints them), one of them written twice,
// and the chains behind them go in one iptables-restore per table; a chain
// another mode now owns stays, with its jumps.
func TestKernelTheIPVSModesChainsAndTheirJumpsGoInOneRestore(t *testing.T) {
	ns := netnstest.New(t, "ipvsclean", "iptables-restore")
	var in strings.Builder
	for _, table := range []string{tableNAT, tableFilter} {
		fmt.Fprintf(&in, "*%s\n", table)
		for _, c := range ourChains[table] {
			fmt.Fprintf(&in, ":%s - [0:0]\n", c)
		}
		for _, j := range jumps {
			if j.Table == table {
				fmt.Fprintf(&in, "-A %s -m comment --comment %q -j %s\n", j.From, j.Comment, j.To)
			}
		}
		if table == tableFilter {
			fmt.Fprintf(&in, "-A FORWARD -m comment --comment %q -j %s\n", "kubernetes forwarding rules", chainForward)
			fmt.Fprintf(&in, "-A FORWARD -s 10.0.0.0/8 -j ACCEPT\n")
		}
		in.WriteString("COMMIT\n")
	}
	restore := netns.Cmd(ns, "iptables-restore", "--noflush")
	restore.Stdin = strings.NewReader(in.String())
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore: %v: %s\n%s", err, out, in.String())
	}

	p := &Proxier{opts: Options{Runner: &iptables.Exec{NetNS: ns}, KeepChains: map[string][]string{tableNAT: {chainMarkMasq}}}}
	for _, table := range []string{tableNAT, tableFilter} {
		if err := p.cleanupTable(context.Background(), table); err != nil {
			t.Fatalf("cleanup of %s: %v", table, err)
		}
	}
	out, err := netns.Cmd(ns, "iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	saved := string(out)
	for _, table := range []string{tableNAT, tableFilter} {
		for _, c := range ourChains[table] {
			if c != chainMarkMasq && strings.Contains(saved, c) {
				t.Errorf("%s left in table %s:\n%s", c, table, saved)
			}
		}
	}
	for _, kept := range []string{":" + chainMarkMasq, "-A FORWARD -s 10.0.0.0/8 -j ACCEPT"} {
		if !strings.Contains(saved, kept) {
			t.Errorf("%q is gone; the cleanup removes only the ipvs mode's own:\n%s", kept, saved)
		}
	}
}
