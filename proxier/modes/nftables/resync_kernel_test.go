package nftables

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// A periodic resync of a table nobody touched writes nothing: the same
// rules under the same handles, the ruleset generation where our last
// commit left it. A change pending at that moment is still written, and a
// real rewrite still comes after anyone's commit, when the node's
// addresses move, and an hour after the last one.
func TestKernelPeriodicResyncRewritesOnlyWhenSomethingSaysSo(t *testing.T) {
	ns := scratchNS(t)
	ctx := context.Background()
	p := kernelProxier(t, ns)
	web, db := webAndDB()
	v := view(web, db)
	if res, err := p.Sync(ctx, v, full()); err != nil || !res.Full {
		t.Fatalf("first sync: full=%v err=%v", res.Full, err)
	}
	listing := func() string { return nftIn(t, ns, "-a", "list", "table", "ip", "kube-proxy") }
	gen := func() uint32 {
		g, ok := p.fams[v1.IPv4Protocol].be.generation()
		if !ok {
			t.Fatal("the netlink backend must read the ruleset generation")
		}
		return g
	}
	resync := func(what string, c *state.Changes, wantFull bool) {
		t.Helper()
		res, err := p.Sync(ctx, v, c)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.Full != wantFull {
			t.Errorf("%s: full=%v, want %v", what, res.Full, wantFull)
		}
	}

	before, g0 := listing(), gen()
	resync("periodic resync of an untouched table", full(), false)
	if after := listing(); after != before {
		t.Errorf("an untouched table was rewritten:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if g := gen(); g != g0 {
		t.Errorf("ruleset generation %d -> %d: something was committed", g0, g)
	}

	setEndpoints(web, ep("10.0.1.5", 8080, true), ep("10.0.3.5", 8080, false))
	resync("periodic resync with web's endpoint change pending", &state.Changes{Full: true, Services: changed(web.Name).Services}, false)
	if table := listing(); !strings.Contains(table, "10.0.3.5 . 8080") || strings.Contains(table, "10.0.2.5 . 8080") {
		t.Errorf("the pending change was not written:\n%s", table)
	}

	// Anyone's commit moves the generation, even in another table: we
	// cannot tell it left ours alone.
	nftIn(t, ns, "add", "table", "ip", "someone-else")
	resync("periodic resync after another commit", full(), true)
	resync("periodic resync right after a full one", full(), false)

	v.Node.IPs = append(v.Node.IPs, netip.MustParseAddr("192.168.0.3"))
	resync("node address added", full(), true)

	p.now = func() time.Time { return time.Now().Add(modes.FullSyncPeriod + time.Minute) }
	resync("an hour after the last full sync", full(), true)
	resync("a partial sync is never made full by the clock", changed(), false)
}
