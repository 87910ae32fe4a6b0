package iptables

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// execCounter counts the iptables executions a Runner would make: each
// method of Exec is at least one process.
type execCounter struct {
	Runner
	n map[string]int
}

func (c *execCounter) Restore(ctx context.Context, input []byte, flags RestoreFlags) error {
	c.n["restore"]++
	return c.Runner.Restore(ctx, input, flags)
}
func (c *execCounter) Save(ctx context.Context, table string) ([]byte, error) {
	c.n["save"]++
	return c.Runner.Save(ctx, table)
}
func (c *execCounter) EnsureChain(ctx context.Context, table, chain string) error {
	c.n["one by one"]++
	return c.Runner.EnsureChain(ctx, table, chain)
}
func (c *execCounter) ChainExists(ctx context.Context, table, chain string) (bool, error) {
	c.n["one by one"]++
	return c.Runner.ChainExists(ctx, table, chain)
}
func (c *execCounter) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	c.n["one by one"]++
	return c.Runner.EnsureRule(ctx, table, chain, rule...)
}

func saveAll(t *testing.T, r Runner) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{tableMangle, tableNAT, tableFilter} {
		out, err := r.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(out)
	}
	return b.String()
}

// A full sync checks its jumps, chains and canaries with one
// iptables-save per table and writes what is missing in one restore per
// table, leaving the tables as upstream's one iptables call per chain and
// jump would; a later full sync writes only the rules. A node's first sync
// is what a node switching modes waits for, and each exec costs 1-2 s in
// the kernel VM under load.
func TestFullSyncEnsuresJumpsWithOneSavePerTable(t *testing.T) {
	ctx := context.Background()
	v, _, _ := twoServices()
	run := func(oneByOne bool) (*Proxier, *Fake, *execCounter) {
		p, f := newTestProxier(t, Options{LocalhostNodePorts: true})
		c := &execCounter{Runner: f, n: map[string]int{}}
		p.runner = c
		if oneByOne {
			f.FailRestore = 3 // each table's jump restore fails: upstream's way
		}
		mustSync(t, p, v, &state.Changes{Full: true})
		return p, f, c
	}
	p, batched, c := run(false)
	if want := map[string]int{"save": 3, "restore": 4}; !cmp.Equal(c.n, want) {
		t.Errorf("first full sync ran %v, want %v (a save and a jump restore per table, then the rules)", c.n, want)
	}
	_, oneByOne, _ := run(true)
	if diff := cmp.Diff(saveAll(t, oneByOne), saveAll(t, batched)); diff != "" {
		t.Errorf("tables after one restore per table differ from one-by-one inserts (-one by one +batched):\n%s", diff)
	}
	got := saveAll(t, batched)
	for _, j := range append(jumps, kubeletJumps...) {
		if n := strings.Count(got, j.SaveLine()+"\n"); n != 1 {
			t.Errorf("%d of jump %s, want 1", n, j.SaveLine())
		}
	}
	if n := strings.Count(got, ":"+chainCanary+" "); n != 3 {
		t.Errorf("%d canary chains, want one in each of mangle, nat, filter:\n%s", n, got)
	}

	clear(c.n)
	p.lastFull = p.now().Add(-2 * time.Hour)
	mustSync(t, p, v, &state.Changes{Full: true})
	if want := map[string]int{"save": 3, "restore": 1}; !cmp.Equal(c.n, want) {
		t.Errorf("second full sync ran %v, want %v (nothing missing: the rules only)", c.n, want)
	}

	// Someone deletes a jump: the next full sync puts it back, once.
	j := jumps[len(jumps)-1]
	if err := batched.DeleteRule(ctx, j.Table, j.From, j.Rule()...); err != nil {
		t.Fatal(err)
	}
	p.lastFull = p.now().Add(-2 * time.Hour)
	mustSync(t, p, v, &state.Changes{Full: true})
	if n := strings.Count(saveAll(t, batched), j.SaveLine()+"\n"); n != 1 {
		t.Errorf("after deleting it, %d of jump %s, want 1", n, j.SaveLine())
	}
}

// The batched check reads the real iptables-save's printing of each jump
// (quoting, match order): were it to differ from SaveLine, every full sync
// would insert the jumps again. Two full syncs on the real tables leave
// one of each, and the second writes the rules only.
func TestKernelFullSyncsLeaveEachJumpOnce(t *testing.T) {
	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			ns := scratchNS(t, backend)
			ctx := context.Background()
			p, err := New(ctx, Options{NetNS: ns, Backend: backend, LocalhostNodePorts: true})
			if err != nil {
				t.Fatal(err)
			}
			c := &execCounter{Runner: p.runner, n: map[string]int{}}
			p.runner = c
			v := kernelView()
			for i := range 2 {
				clear(c.n)
				p.lastFull = time.Time{}
				if _, err := p.Sync(ctx, v, &state.Changes{Full: true}); err != nil {
					t.Fatalf("full sync %d: %v", i+1, err)
				}
			}
			if want := map[string]int{"save": 3, "restore": 1}; !cmp.Equal(c.n, want) {
				t.Errorf("second full sync ran %v, want %v", c.n, want)
			}
			var all strings.Builder
			for _, table := range []string{tableMangle, tableNAT, tableFilter} {
				all.WriteString(sh(t, ns, "iptables-"+backend+"-save -t "+table))
			}
			for _, j := range append(jumps, kubeletJumps...) {
				if n := strings.Count(all.String(), j.SaveLine()+"\n"); n != 1 {
					t.Errorf("%d of jump %s, want 1:\n%s", n, j.SaveLine(), all.String())
				}
			}
		})
	}
}

// The periodic sync of a quiet node has nothing to write and runs no
// iptables-restore (a partial sync after a change still does).
func TestAQuietPartialSyncRunsNoRestore(t *testing.T) {
	p, f := newTestProxier(t, Options{})
	c := &execCounter{Runner: f, n: map[string]int{}}
	p.runner = c
	v, a, _ := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	clear(c.n)
	if full, _ := mustSync(t, p, v, &state.Changes{}); full {
		t.Fatal("a sync without changes was full")
	}
	if c.n["restore"] != 0 {
		t.Errorf("a sync without changes ran %d iptables-restore", c.n["restore"])
	}
	v.Services[a] = svc(a, "172.30.0.1", 80, []state.Endpoint{ep("10.180.0.9", 80, true)}, nodePort(30001))
	mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{a: {}}})
	if c.n["restore"] != 1 {
		t.Errorf("a sync after an endpoint change ran %d iptables-restore, want 1", c.n["restore"])
	}
}
