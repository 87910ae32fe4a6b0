package ipvs

import (
	"context"
	"maps"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// A proxier restarted on a node finds the kernel as its predecessor left
// it. Its first (full) sync must not remove or re-create what already
// matches: every virtual server, real server, kube-ipvs0 address and
// ipset entry removed for a moment is new connections lost (a SYN
// dropped and resent a second later) while traffic flows.
func TestARestartedProxiersFirstSyncLeavesAMatchingKernelUntouched(t *testing.T) {
	a, b := ep("10.244.1.10", true), ep("10.244.2.10", false)
	v := view(
		svc("web", "10.96.0.10", []state.Endpoint{a, b}),
		svc("np", "10.96.0.11", []state.Endpoint{a, b}, func(s *state.ServicePort) { s.NodePort = 30011 }),
		svc("sticky", "10.96.0.12", []state.Endpoint{a}, func(s *state.ServicePort) { s.SessionAffinity, s.StickySeconds = true, 600 }),
		svc("local", "10.96.0.13", []state.Endpoint{a, b}, func(s *state.ServicePort) {
			s.NodePort, s.ExternalPolicyLocal, s.HealthCheckNodePort = 30013, true, 32013
		}),
	)
	before, k := newTestProxier(t, nil)
	mustSync(t, before, v, full())
	servers, sets, addrs := k.ipvs.Dump(), snapshotSets(k.ipset), maps.Clone(k.links.Dummy[dummyDevice])

	k.ipvs.ResetCalls()
	k.ipset.Calls, k.links.Calls = map[string]int{}, map[string]int{}
	after, err := New(context.Background(), before.opts)
	if err != nil {
		t.Fatalf("New after the restart: %v", err)
	}
	mustSync(t, after, v, full())

	if n := k.ipvs.Writes(); n != 0 {
		t.Errorf("the restarted proxier's first sync wrote IPVS %d times (%v), want none: the kernel matched", n, k.ipvs.Calls)
	}
	for _, call := range []string{"Create", "Destroy", "Add", "Del"} {
		if n := k.ipset.Calls[call]; n != 0 && call != "Create" {
			t.Errorf("the restarted proxier's first sync called ipset %s %d times, want none", call, n)
		}
	}
	for _, call := range []string{"AddAddr", "DelAddr", "DeleteDummy"} {
		if n := k.links.Calls[call]; n != 0 {
			t.Errorf("the restarted proxier's first sync called %s %d times, want none", call, n)
		}
	}
	if got := k.ipvs.Dump(); !equalLines(got, servers) {
		t.Errorf("virtual servers after the restart:\n%v\nwant as before:\n%v", got, servers)
	}
	if got := snapshotSets(k.ipset); !maps.EqualFunc(got, sets, func(x, y map[Entry]bool) bool { return maps.Equal(x, y) }) {
		t.Errorf("ipsets after the restart differ: %v, want %v", got, sets)
	}
	if got := k.links.Dummy[dummyDevice]; !maps.Equal(got, addrs) {
		t.Errorf("%s addresses after the restart: %v, want %v", dummyDevice, got, addrs)
	}
}

func snapshotSets(f *FakeIPSet) map[string]map[Entry]bool {
	out := map[string]map[Entry]bool{}
	for name, s := range f.Sets {
		out[name] = maps.Clone(s)
	}
	return out
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
