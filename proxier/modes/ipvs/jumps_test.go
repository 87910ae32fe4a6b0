package ipvs

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
)

// leavingIPTables is what iptables mode leaves in the chains the two modes
// share, as a node switching with --migrate-from has it at the first sync.
const leavingIPTables = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SVC-X - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 10.96.7.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X
COMMIT
*filter
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
`

func saveBoth(t *testing.T, ipt *iptables.Fake) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{tableNAT, tableFilter} {
		out, err := ipt.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(out)
	}
	return b.String()
}

// The jumps a first sync adds leave the tables exactly as upstream's one
// iptables call per chain and jump would, in at most one restore per
// table, without flushing a chain another mode still uses (a node leaving
// iptables mode keeps DNATing through KUBE-SERVICES until the rules'
// restore); in steady state nothing is written.
func TestJumpsAreAddedInOneRestorePerTableAsOneByOneInsertsWould(t *testing.T) {
	for _, c := range []struct {
		name, seed string
		restores   int
	}{
		{"a fresh node", "", 2},
		{"a node leaving iptables mode", leavingIPTables, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			run := func(oneByOne bool) (*iptables.Fake, int) {
				p, k := newTestProxier(t, nil)
				if c.seed != "" {
					if err := k.ipt.Restore(ctx, []byte(c.seed), iptables.RestoreFlags{}); err != nil {
						t.Fatal(err)
					}
				}
				before := len(k.ipt.Restores)
				if oneByOne {
					k.ipt.FailRestore = 2 // every table falls back to upstream's way
				}
				if err := p.ensureJumps(ctx); err != nil {
					t.Fatal(err)
				}
				return k.ipt, len(k.ipt.Restores) - before
			}
			batched, n := run(false)
			if n != c.restores {
				t.Errorf("%d restores for the jumps, want %d (one per table with something missing)", n, c.restores)
			}
			oneByOne, _ := run(true)
			if diff := cmp.Diff(saveBoth(t, oneByOne), saveBoth(t, batched)); diff != "" {
				t.Errorf("tables after one restore per table differ from one-by-one inserts (-one by one +batched):\n%s", diff)
			}
			got := saveBoth(t, batched)
			for _, j := range jumps {
				if !strings.Contains(got, j.SaveLine()+"\n") {
					t.Errorf("missing jump %s", j.SaveLine())
				}
			}
			if c.seed != "" {
				for _, kept := range []string{
					"-A KUBE-SERVICES -d 10.96.7.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X",
					"-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
				} {
					if !strings.Contains(got, kept+"\n") {
						t.Errorf("iptables mode's rule %q was flushed before the rules' restore", kept)
					}
				}
			}
			p, _ := newTestProxier(t, nil)
			p.opts.Runner = batched
			before := len(batched.Restores)
			if err := p.ensureJumps(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(batched.Restores) - before; n != 0 {
				t.Errorf("steady state wrote %d restores for jumps already there:\n%s", n, batched.Restores[len(batched.Restores)-1])
			}
		})
	}
}
