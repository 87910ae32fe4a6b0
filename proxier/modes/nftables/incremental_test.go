package nftables

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/state"
)

func TestOneEndpointChangeTouchesOnlyThatService(t *testing.T) {
	ctx := context.Background()
	p, fake := newFakeProxier(t, nil)
	web := svc("ns1", "web", "http", "172.30.0.10", 80, ep("10.0.1.5", 8080, true), ep("10.0.2.5", 8080, false))
	db := svc("ns1", "db", "", "172.30.0.20", 5432, ep("10.0.1.2", 5432, true))
	v := view(web, db)
	if _, err := p.Sync(ctx, v, full()); err != nil {
		t.Fatal(err)
	}
	setEndpoints(web, ep("10.0.1.5", 8080, true), ep("10.0.3.5", 8080, false))
	res, err := p.Sync(ctx, v, changed(web.Name))
	if err != nil {
		t.Fatal(err)
	}
	if res.Full {
		t.Error("a one-endpoint change ran a full sync")
	}
	tx := fake.LastTransaction.String()
	lines := strings.Split(strings.TrimSpace(tx), "\n")
	for _, l := range lines {
		if !strings.Contains(l, "ns1/web/") && !strings.Contains(l, "hairpin-ips { 10.0.2.5 . 10.0.2.5 }") &&
			!strings.Contains(l, "hairpin-ips { 10.0.3.5 . 10.0.3.5 }") {
			t.Errorf("transaction touches something else than web: %q", l)
		}
	}
	// The service chain (flush + masquerade rule + 2 picks) and the moved
	// endpoint's hairpin element (delete + add): nothing else.
	if n := fake.LastTransaction.NumOperations(); n != 6 {
		t.Errorf("want 6 operations, got %d:\n%s", n, tx)
	}
	if strings.Contains(tx, "10.0.1.5 . 10.0.1.5") {
		t.Errorf("the unchanged endpoint's hairpin element was rewritten:\n%s", tx)
	}
}

func TestPartialSyncsEndWhereAFullSyncWould(t *testing.T) {
	ctx := context.Background()
	steps := []struct {
		name   string
		mutate func(v *state.View) []state.ServicePortName
	}{
		{"an endpoint is added", func(v *state.View) []state.ServicePortName {
			sp := v.Services[spName("ns3", "many", "")]
			setEndpoints(sp, append(sp.ClusterEndpoints, ep("10.0.5.10", 80, false))...)
			return []state.ServicePortName{sp.Name}
		}},
		{"a service loses every endpoint", func(v *state.View) []state.ServicePortName {
			sp := v.Services[spName("ns1", "web", "http")]
			setEndpoints(sp)
			return []state.ServicePortName{sp.Name}
		}},
		{"affinity timeout changes", func(v *state.View) []state.ServicePortName {
			sp := v.Services[spName("ns1", "sticky", "")]
			sp.StickySeconds = 60
			return []state.ServicePortName{sp.Name}
		}},
		{"a service is removed", func(v *state.View) []state.ServicePortName {
			n := spName("ns2", "lb", "https")
			delete(v.Services, n)
			return []state.ServicePortName{n}
		}},
		{"a service appears", func(v *state.View) []state.ServicePortName {
			sp := svc("ns4", "new", "", "172.30.0.40", 80, ep("10.0.1.40", 80, true))
			v.Services[sp.Name] = sp
			return []state.ServicePortName{sp.Name}
		}},
		{"a second port shares a ClusterIP and goes", func(v *state.View) []state.ServicePortName {
			sp := svc("ns4", "new", "alt", "172.30.0.40", 81, ep("10.0.1.40", 81, true))
			v.Services[sp.Name] = sp
			return []state.ServicePortName{sp.Name}
		}},
	}
	v := &state.View{}
	*v = *view()
	for _, tc := range goldenCases() {
		for n, sp := range tc.view.Services {
			v.Services[n] = sp
		}
	}
	p, fake := newFakeProxier(t, nil)
	if _, err := p.Sync(ctx, v, full()); err != nil {
		t.Fatal(err)
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			names := step.mutate(v)
			if _, err := p.Sync(ctx, v, changed(names...)); err != nil {
				t.Fatalf("partial sync: %v", err)
			}
			// Let stale chains go, as a later sync would.
			now := p.now
			p.now = func() time.Time { return now().Add(2 * staleChainDelay) }
			if _, err := p.Sync(ctx, v, changed()); err != nil {
				t.Fatalf("stale-chain sync: %v", err)
			}
			ref, refFake := newFakeProxier(t, nil)
			if _, err := ref.Sync(ctx, v, full()); err != nil {
				t.Fatal(err)
			}
			if got, want := fake.Dump(), refFake.Dump(); got != want {
				t.Errorf("after %s the table differs from a fresh full sync:\n--- got\n%s\n--- want\n%s", step.name, got, want)
			}
		})
	}
}

func TestABadServicePortIsSkippedAndTheOthersProgrammed(t *testing.T) {
	p, fake := newFakeProxier(t, nil)
	bad := svc("ns1", "v6", "", "fd00::1", 80, ep("10.0.1.5", 80, true))
	good := svc("ns1", "db", "", "172.30.0.20", 5432, ep("10.0.1.2", 5432, true))
	if _, err := p.Sync(context.Background(), view(bad, good), full()); err != nil {
		t.Fatalf("a bad service failed the sync: %v", err)
	}
	dump := fake.Dump()
	if strings.Contains(dump, "ns1/v6/") || !strings.Contains(dump, "ns1/db/") {
		t.Errorf("want db programmed and v6 skipped:\n%s", dump)
	}
}
