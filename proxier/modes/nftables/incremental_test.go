package nftables

import (
	"context"
	"net/netip"
	"regexp"
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
	// The moved endpoint's range of web's endpoints map, deleted and added
	// again with the new address: no chain or rule is rewritten, so the
	// kernel has nothing to re-validate. Both endpoints are remote, so no
	// hairpin element moves (only local endpoints have one).
	tx := fake.LastTransaction.String()
	want := []*regexp.Regexp{
		regexp.MustCompile(`^delete element ip kube-proxy endpoints-0 \{ (\d+)-(\d+) \}$`),
		regexp.MustCompile(`^add element ip kube-proxy endpoints-0 \{ (\d+)-(\d+) : 10\.0\.3\.5 \. 8080 \}$`),
	}
	lines := strings.Split(strings.TrimSpace(tx), "\n")
	if len(lines) != len(want) {
		t.Fatalf("want %d operations, got %d:\n%s", len(want), len(lines), tx)
	}
	ranges := map[string]bool{}
	for _, l := range lines {
		matched := false
		for _, re := range want {
			if m := re.FindStringSubmatch(l); m != nil {
				matched = true
				if len(m) == 3 {
					ranges[m[1]+"-"+m[2]] = true
				}
			}
		}
		if !matched {
			t.Errorf("unexpected operation %q in:\n%s", l, tx)
		}
	}
	if len(ranges) != 1 {
		t.Errorf("the endpoint moved but its share of the draws did not stay the same range: %v", ranges)
	}
	if !strings.Contains(fake.Dump(), "10.0.1.5 . 8080") {
		t.Errorf("the unchanged endpoint left web's endpoints map:\n%s", fake.Dump())
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
		{"a ClusterIP changes, and its chain's rules with it but not their number", func(v *state.View) []state.ServicePortName {
			sp := v.Services[spName("ns3", "many", "")]
			sp.ClusterIP = netip.MustParseAddr("172.30.0.99")
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
			if got, want := withoutSlots(fake.Dump()), withoutSlots(refFake.Dump()); got != want {
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
