package iptables

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

func newTestProxier(t *testing.T, opts Options) (*Proxier, *Fake) {
	t.Helper()
	f := NewFake()
	opts.Runner = f
	if opts.Sysctl == nil {
		opts.Sysctl = FakeSysctl{}
	}
	p, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

func twoServices() (*state.View, state.ServicePortName, state.ServicePortName) {
	a, b := spn("ns1", "a", "http"), spn("ns2", "b", "http")
	v := view(v1.IPv4Protocol,
		svc(a, "172.30.0.1", 80, []state.Endpoint{ep("10.180.0.1", 80, true), ep("10.180.0.2", 80, false)}, nodePort(30001)),
		svc(b, "172.30.0.2", 80, []state.Endpoint{ep("10.180.0.3", 80, true), ep("10.180.0.4", 80, false)}))
	return v, a, b
}

func mustSync(t *testing.T, p *Proxier, v *state.View, c *state.Changes) (full bool, rules map[string]int) {
	t.Helper()
	res, err := p.Sync(context.Background(), v, c)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res.Full, res.Rules
}

// declaredChains lists the per-Service chains declared in restore input.
func declaredChains(input []byte) []string {
	var out []string
	for _, c := range chainsIn(input) {
		if isServiceChain(c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// kubeRules counts the rules in KUBE-* chains of a fake table.
func kubeRules(t *testing.T, f *Fake, table string) int {
	t.Helper()
	data, _ := f.Save(context.Background(), table)
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "-A KUBE-") {
			n++
		}
	}
	return n
}

func TestPartialSyncWritesOnlyTheChangedServiceChains(t *testing.T) {
	p, f := newTestProxier(t, Options{LocalDetect: LocalDetect{Mode: LocalNodeCIDR}})
	v, _, b := twoServices()
	if full, _ := mustSync(t, p, v, &state.Changes{Full: true}); !full {
		t.Fatal("first sync was not full")
	}
	oldSEP := endpointChain("ns2/b:http", "tcp", "10.180.0.4:80")
	newSEP := endpointChain("ns2/b:http", "tcp", "10.180.0.5:80")
	v.Services[b] = svc(b, "172.30.0.2", 80, []state.Endpoint{ep("10.180.0.3", 80, true), ep("10.180.0.5", 80, false)})

	full, rules := mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{b: {}}})
	if full {
		t.Fatal("endpoint change caused a full sync")
	}
	input := f.Restores[len(f.Restores)-1]
	bChains := chainsFor("ns2/b:http", "tcp")
	want := []string{bChains.svc, endpointChain("ns2/b:http", "tcp", "10.180.0.3:80"), newSEP, oldSEP}
	slices.Sort(want)
	if got := declaredChains(input); !slices.Equal(got, want) {
		t.Errorf("partial restore declared %v, want only service b's chains %v\ninput:\n%s", got, want, input)
	}
	if !strings.Contains(string(input), "-X "+oldSEP+"\n") {
		t.Errorf("partial restore does not delete the old endpoint chain %s", oldSEP)
	}
	// An endpoint swap does not change KUBE-SERVICES or the filter table,
	// so they are left as they are (re-adding one rule per Service is most
	// of a partial restore's cost on the nft backend).
	if strings.Contains(string(input), "KUBE-SERVICES") || strings.Contains(string(input), "*filter") {
		t.Errorf("partial restore rewrites unchanged KUBE-SERVICES or filter:\n%s", input)
	}
	if got := kubeRules(t, f, tableNAT); rules[tableNAT] != got {
		t.Errorf("reported %d nat rules, the table has %d", rules[tableNAT], got)
	}
	// The kernel now holds what a full sync of the same view would write.
	fresh, ff := newTestProxier(t, Options{LocalDetect: LocalDetect{Mode: LocalNodeCIDR}})
	mustSync(t, fresh, v, &state.Changes{Full: true})
	assertSameTable(t, f, ff, tableNAT)
	assertSameTable(t, f, ff, tableFilter)
}

func TestAPartialSyncRewritesKUBESERVICESWhenAServiceLosesItsEndpoints(t *testing.T) {
	p, f := newTestProxier(t, Options{LocalDetect: LocalDetect{Mode: LocalNodeCIDR}})
	v, _, b := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	v.Services[b] = svc(b, "172.30.0.2", 80, nil)
	mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{b: {}}})
	input := string(f.Restores[len(f.Restores)-1])
	if !strings.Contains(input, ":KUBE-SERVICES - [0:0]") || !strings.Contains(input, "*filter") {
		t.Errorf("partial restore leaves KUBE-SERVICES or the filter table stale:\n%s", input)
	}
	fresh, ff := newTestProxier(t, Options{LocalDetect: LocalDetect{Mode: LocalNodeCIDR}})
	mustSync(t, fresh, v, &state.Changes{Full: true})
	assertSameTable(t, f, ff, tableNAT)
	assertSameTable(t, f, ff, tableFilter)
}

func assertSameTable(t *testing.T, got, want *Fake, table string) {
	t.Helper()
	g, _ := got.Save(context.Background(), table)
	w, _ := want.Save(context.Background(), table)
	gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
	slices.Sort(gl)
	slices.Sort(wl)
	if !slices.Equal(gl, wl) {
		t.Errorf("table %s after partial syncs differs from a full sync:\ngot:\n%s\nwant:\n%s", table, g, w)
	}
}

func TestPartialSyncAlsoWritesAnUnlistedServiceWhoseRulesChanged(t *testing.T) {
	p, f := newTestProxier(t, Options{})
	v, a, b := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	v.Services[a].SessionAffinity, v.Services[a].StickySeconds = true, 60
	mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{b: {}}})
	input := string(f.Restores[len(f.Restores)-1])
	if !strings.Contains(input, ":"+chainsFor("ns1/a:http", "tcp").svc+" ") {
		t.Errorf("service a changed but its chain was not rewritten:\n%s", input)
	}
}

func TestPartialSyncOfARemovedServiceDeletesItsChains(t *testing.T) {
	p, f := newTestProxier(t, Options{})
	v, a, _ := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	delete(v.Services, a)
	mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{a: {}}})
	for _, c := range f.Chains(tableNAT) {
		if strings.HasSuffix(c, portProtoHash("ns1/a:http", "tcp")) {
			t.Errorf("chain %s of the removed service is still there", c)
		}
	}
}

func TestFailedRestoreMakesTheNextSyncFull(t *testing.T) {
	p, f := newTestProxier(t, Options{})
	v, _, b := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	f.FailRestore = 1
	changes := &state.Changes{Services: map[state.ServicePortName]struct{}{b: {}}}
	if _, err := p.Sync(context.Background(), v, changes); err == nil {
		t.Fatal("sync with a failing iptables-restore returned no error")
	}
	if full, _ := mustSync(t, p, v, changes); !full {
		t.Error("sync after a failure was partial")
	}
}

func TestLostCanaryMakesTheNextSyncFull(t *testing.T) {
	p, f := newTestProxier(t, Options{})
	p.canaryInterval = 0
	v, _, b := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	changes := &state.Changes{Services: map[state.ServicePortName]struct{}{b: {}}}
	if full, _ := mustSync(t, p, v, changes); full {
		t.Fatal("sync with the canary in place was full")
	}
	if err := f.DeleteChain(context.Background(), tableMangle, chainCanary); err != nil {
		t.Fatal(err)
	}
	if full, _ := mustSync(t, p, v, changes); !full {
		t.Error("sync after the canary vanished was partial")
	}
}

// A full request while our record of the kernel holds (the periodic resync,
// a node change) writes only what differs from it; once an hour, or when
// the record broke, it rewrites everything.
func TestRequestedFullSyncsRewriteEverythingOnlyHourlyWhileTheRecordHolds(t *testing.T) {
	p, f := newTestProxier(t, Options{})
	now := time.Unix(10000, 0)
	p.now = func() time.Time { return now }
	v, _, b := twoServices()
	if full, _ := mustSync(t, p, v, &state.Changes{Full: true}); !full {
		t.Fatal("the first sync was not full")
	}
	now = now.Add(30 * time.Second)
	n := len(f.Restores)
	if full, _ := mustSync(t, p, v, &state.Changes{Full: true}); full {
		t.Fatal("the periodic resync 30 s later rewrote everything")
	}
	for _, input := range f.Restores[n:] {
		if strings.Contains(string(input), "-A "+prefixSEP) {
			t.Errorf("the resync wrote endpoint chains though nothing changed:\n%s", input)
		}
	}
	// Something that did change is written by that same kind of sync.
	sp := *v.Services[b]
	sp.ClusterEndpoints = sp.ClusterEndpoints[:1]
	sp.AllEndpoints = sp.ClusterEndpoints
	v.Services[b] = &sp
	now = now.Add(30 * time.Second)
	mustSync(t, p, v, &state.Changes{Full: true})
	if input := string(f.Restores[len(f.Restores)-1]); !strings.Contains(input, "-A "+prefixSEP) {
		t.Errorf("the resync did not write the Service whose endpoints changed:\n%s", input)
	}
	now = now.Add(modes.FullSyncPeriod)
	if full, _ := mustSync(t, p, v, &state.Changes{Full: true}); !full {
		t.Error("an hour later the requested full sync was not full")
	}
	f.FailRestore = 1
	if _, err := p.Sync(context.Background(), v, &state.Changes{Services: map[state.ServicePortName]struct{}{b: {}}}); err == nil {
		t.Fatal("sync with a failing iptables-restore returned no error")
	}
	if full, _ := mustSync(t, p, v, &state.Changes{Full: true}); !full {
		t.Error("after a failure the requested full sync was not full")
	}
}

func TestFullSyncEnsuresJumpsOnceAndDeletesStaleChains(t *testing.T) {
	p, f := newTestProxier(t, Options{})
	ctx := context.Background()
	stale := prefixSEP + "STALESTALESTALE1"
	if err := f.Restore(ctx, []byte("*nat\n:"+stale+" - [0:0]\nCOMMIT\n"), RestoreFlags{}); err != nil {
		t.Fatal(err)
	}
	v, _, _ := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	mustSync(t, p, v, &state.Changes{Full: true})
	nat, _ := f.Save(ctx, tableNAT)
	if n := strings.Count(string(nat), `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`); n != 1 {
		t.Errorf("PREROUTING has %d jumps to KUBE-SERVICES, want 1:\n%s", n, nat)
	}
	if strings.Contains(string(nat), stale) {
		t.Errorf("stale chain %s survived a full sync", stale)
	}
	filter, _ := f.Save(ctx, tableFilter)
	if !strings.Contains(string(filter), "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL") {
		t.Errorf("filter INPUT lacks the firewall jump:\n%s", filter)
	}
}

func TestCleanupRemovesOursAndUpstreamLeftoversAndIsSafeTwice(t *testing.T) {
	ctx := context.Background()
	p, f := newTestProxier(t, Options{LocalhostNodePorts: true})
	// What an older kube-proxy may have left: other comments, XLB chains.
	leftover := "*nat\n:KUBE-XLB-OLDOLDOLDOLDOLD1 - [0:0]\n:KUBE-MARK-DROP - [0:0]\n" +
		"-A KUBE-XLB-OLDOLDOLDOLDOLD1 -j RETURN\nCOMMIT\n"
	if err := f.Restore(ctx, []byte(leftover), RestoreFlags{}); err != nil {
		t.Fatal(err)
	}
	if err := f.EnsureRule(ctx, tableNAT, "OUTPUT", "-j", "KUBE-XLB-OLDOLDOLDOLDOLD1"); err != nil {
		t.Fatal(err)
	}
	v, _, _ := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	for range 2 {
		if err := p.Cleanup(ctx); err != nil {
			t.Fatalf("cleanup: %v", err)
		}
	}
	for _, table := range []string{tableNAT, tableFilter, tableMangle} {
		data, _ := f.Save(ctx, table)
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "KUBE-") && !strings.Contains(l, "KUBE-MARK-DROP") {
				t.Errorf("table %s still has %q after cleanup", table, l)
			}
		}
	}
	// After cleanup the next sync starts over.
	if full, _ := mustSync(t, p, v, &state.Changes{}); !full {
		t.Error("first sync after cleanup was partial")
	}
}

func TestNewAppliesOptions(t *testing.T) {
	sys := FakeSysctl{sysctlConntrackLiberal: "1"}
	bit := int32(5)
	p, f := newTestProxier(t, Options{Sysctl: sys, LocalhostNodePorts: true, MasqueradeBit: &bit})
	if sys[sysctlRouteLocalnet] != "1" {
		t.Error("localhost NodePorts did not set route_localnet")
	}
	v, _, _ := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	input := string(f.Restores[len(f.Restores)-1])
	if !strings.Contains(input, "-j MARK --or-mark 0x00000020\n") {
		t.Errorf("masquerade bit 5 is not mark 0x00000020:\n%s", input)
	}
	if strings.Contains(input, "INVALID") {
		t.Error("INVALID drop rule written although nf_conntrack_tcp_be_liberal is set")
	}
	for _, bad := range []Options{{Backend: "ebpf"}, {Family: "IPv5"}, {MasqueradeBit: new(int32(32))}, {LocalDetect: LocalDetect{Mode: LocalClusterCIDR}}} {
		bad.Runner, bad.Sysctl = NewFake(), FakeSysctl{}
		if _, err := New(context.Background(), bad); err == nil {
			t.Errorf("New(%+v) accepted bad options", bad)
		}
	}
}

func TestSyncRefusesAViewOfTheOtherFamily(t *testing.T) {
	p, _ := newTestProxier(t, Options{})
	if _, err := p.Sync(context.Background(), view(v1.IPv6Protocol), &state.Changes{Full: true}); err == nil {
		t.Error("IPv4 proxier synced an IPv6 view")
	}
}

func TestUpstreamChainNamesForUnnamedPorts(t *testing.T) {
	if got := spn("ns1", "svc1", "").String(); got != "ns1/svc1" {
		t.Errorf("unnamed port name is %q, upstream writes ns1/svc1 (it feeds the chain hashes)", got)
	}
	if got := chainsFor("ns1/svc1:p80", "tcp").svc; got != "KUBE-SVC-XPGD46QRK7WJZT7O" {
		t.Errorf("chain for ns1/svc1:p80 is %s, upstream's is KUBE-SVC-XPGD46QRK7WJZT7O", got)
	}
	if got := endpointChain("ns1/svc1:p80", "tcp", "10.180.0.1:80"); got != "KUBE-SEP-SXIVWICOYRO3J4NJ" {
		t.Errorf("endpoint chain is %s, upstream's is KUBE-SEP-SXIVWICOYRO3J4NJ", got)
	}
}

// A migration into ipvs: the ipvs mode has rewritten KUBE-SERVICES and
// friends and its own chains jump to KUBE-MARK-MASQ. Cleanup with those
// kept removes the Services' chains and leaves the new mode working.
func TestCleanupLeavesTheChainsAnotherModeNowOwns(t *testing.T) {
	ctx := context.Background()
	keep := map[string][]string{tableNAT: {chainServices, chainPostrouting, chainMarkMasq}}
	p, f := newTestProxier(t, Options{KeepChains: keep})
	v, _, _ := twoServices()
	mustSync(t, p, v, &state.Changes{Full: true})
	ipvsRules := "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODE-PORT - [0:0]\n" +
		"-A KUBE-SERVICES -j KUBE-NODE-PORT\n-A KUBE-NODE-PORT -j KUBE-MARK-MASQ\nCOMMIT\n"
	if err := f.Restore(ctx, []byte(ipvsRules), RestoreFlags{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	nat, _ := f.Save(ctx, tableNAT)
	for _, want := range []string{"-A PREROUTING", "-j KUBE-SERVICES", "-A KUBE-SERVICES -j KUBE-NODE-PORT",
		"-A KUBE-NODE-PORT -j KUBE-MARK-MASQ", ":KUBE-POSTROUTING", ":KUBE-MARK-MASQ"} {
		if !strings.Contains(string(nat), want) {
			t.Errorf("cleanup took %q from the mode that owns it now; nat:\n%s", want, nat)
		}
	}
	for _, gone := range []string{"KUBE-SVC-", "KUBE-SEP-", "KUBE-NODEPORTS"} {
		if strings.Contains(string(nat), gone) {
			t.Errorf("cleanup left %s; nat:\n%s", gone, nat)
		}
	}
}
