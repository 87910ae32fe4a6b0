package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// manyServices is n Services with one endpoint each, ClusterIPs
// 172.30.1.1 upward, so their low bytes land in different buckets.
func manyServices(n int) *state.View {
	v := view(v1.IPv4Protocol)
	for i := range n {
		name := spn("ns1", fmt.Sprintf("s%d", i), "http")
		v.Services[name] = svc(name, netip.AddrFrom4([4]byte{172, 30, 1, byte(i + 1)}).String(), 80,
			[]state.Endpoint{ep(fmt.Sprintf("10.180.1.%d", i+1), 8080, false)})
	}
	return v
}

func TestBucketedDispatchPutsEachServiceInItsLeafAndTheNodePortJumpLast(t *testing.T) {
	cfg := testConfig()
	cfg.bucketThreshold = 3
	v := manyServices(4)
	out := newRenderer(cfg).render(renderInput{view: v, full: true})
	f := NewFake()
	if err := f.Restore(context.Background(), out.data, RestoreFlags{}); err != nil {
		t.Fatalf("restore refused the bucketed rendering: %v", err)
	}
	nat := f.tables[tableNAT]
	svcs := nat.chains[chainServices].rules
	if len(svcs) != 17 || !strings.HasSuffix(svcs[16], "-j "+chainNodePorts) {
		t.Errorf("KUBE-SERVICES has %d rules, want 16 bucket jumps and the NodePort jump last:\n%s", len(svcs), strings.Join(svcs, "\n"))
	}
	if got := nat.chains[chainServices].rules[10]; got != "-d 0.0.0.10/0.0.0.15 -j KUBE-SVCB-A" {
		t.Errorf("KUBE-SERVICES rule 11 is %q", got)
	}
	if got := nat.chains["KUBE-SVCB-2"].rules[0]; got != "-d 0.0.0.2/0.0.0.255 -j KUBE-SVCB-02" {
		t.Errorf("KUBE-SVCB-2's first rule is %q", got)
	}
	leaf := nat.chains["KUBE-SVCB-02"].rules
	want := `-m comment --comment "ns1/s1:http cluster IP" -m tcp -p tcp -d 172.30.1.2 --dport 80 -j ` + chainsFor("ns1/s1:http", "tcp").svc
	if len(leaf) != 1 || leaf[0] != want {
		t.Errorf("leaf KUBE-SVCB-02 = %q, want [%s]", leaf, want)
	}
	if n := len(f.Chains(tableNAT)); n < 16+256 {
		t.Errorf("only %d nat chains; the bucket tree has 272", n)
	}
	if out.rules[tableNAT] != chainRulesTotal(f, tableNAT) {
		t.Errorf("rendering counts %d nat rules, the table has %d", out.rules[tableNAT], chainRulesTotal(f, tableNAT))
	}
}

func chainRulesTotal(f *Fake, table string) int {
	n := 0
	for c, ch := range f.tables[table].chains {
		if strings.HasPrefix(c, "KUBE-") {
			n += len(ch.rules)
		}
	}
	return n
}

func TestANewServiceAboveTheThresholdRewritesOnlyItsLeaf(t *testing.T) {
	p, f := newTestProxier(t, Options{BucketThreshold: 3, LocalDetect: LocalDetect{Mode: LocalNodeCIDR}})
	v := manyServices(5)
	mustSync(t, p, v, &state.Changes{Full: true})
	n := spn("ns1", "new", "http")
	v.Services[n] = svc(n, "172.30.2.66", 80, []state.Endpoint{ep("10.180.2.66", 8080, false)})
	mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{n: {}}})
	input := string(f.Restores[len(f.Restores)-1])
	chains := chainsIn([]byte(input))
	if slices.Contains(chains, chainServices) {
		t.Errorf("a new Service rewrote KUBE-SERVICES:\n%s", input)
	}
	var leaves []string
	for _, c := range chains {
		if strings.HasPrefix(c, prefixSVCB) {
			leaves = append(leaves, c)
		}
	}
	if !slices.Equal(leaves, []string{"KUBE-SVCB-42"}) {
		t.Errorf("partial sync wrote bucket chains %v, want only KUBE-SVCB-42 (0x42 = 66)", leaves)
	}
}

func TestCrossingTheThresholdBothWaysCreatesAndDeletesTheBuckets(t *testing.T) {
	ctx := context.Background()
	p, f := newTestProxier(t, Options{BucketThreshold: 3, LocalDetect: LocalDetect{Mode: LocalNodeCIDR}})
	v := manyServices(3)
	mustSync(t, p, v, &state.Changes{Full: true})
	buckets := func() int {
		n := 0
		for _, c := range f.Chains(tableNAT) {
			if strings.HasPrefix(c, prefixSVCB) {
				n++
			}
		}
		return n
	}
	if n := buckets(); n != 0 {
		t.Fatalf("%d bucket chains at the threshold", n)
	}
	up := spn("ns1", "s3", "http")
	v.Services[up] = manyServices(4).Services[up]
	mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{up: {}}})
	if n := buckets(); n != 272 {
		t.Errorf("%d bucket chains above the threshold, want 272", n)
	}
	delete(v.Services, up)
	mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{up: {}}})
	if n := buckets(); n != 0 {
		t.Errorf("%d bucket chains left after dropping below the threshold", n)
	}
	v.Services[up] = manyServices(4).Services[up]
	mustSync(t, p, v, &state.Changes{Full: true})
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if n := buckets(); n != 0 {
		t.Errorf("cleanup left %d bucket chains", n)
	}
}

// TestSplitRestoreNeverDispatchesToAnIncompleteChain applies a resync that
// changes, adds and removes Services one transaction at a time, and after
// each checks that every chain reachable from KUBE-SERVICES and
// KUBE-NODEPORTS holds either its old or its new rules, never a mix, and
// that no transaction but the top one is much larger than the bound.
func TestSplitRestoreNeverDispatchesToAnIncompleteChain(t *testing.T) {
	for _, threshold := range []int{-1, 10} {
		t.Run(fmt.Sprintf("bucket threshold %d", threshold), func(t *testing.T) {
			ctx := context.Background()
			cfg := testConfig()
			cfg.bucketThreshold = threshold
			cfg.txnLines = 40
			r := newRenderer(cfg)
			old := bigView(30, 3)
			f := NewFake()
			first := r.render(renderInput{view: old, full: true})
			if err := f.Restore(ctx, first.data, RestoreFlags{}); err != nil {
				t.Fatal(err)
			}
			before := snapshot(f)
			next := bigView(25, 3) // five Services gone
			for i := range 10 {
				flipEndpoint(next, spn(fmt.Sprintf("ns%d", i%50), fmt.Sprintf("svc%d", i), "http"), i)
			}
			for i := 30; i < 36; i++ {
				n := spn("ns9", fmt.Sprintf("new%d", i), "http")
				next.Services[n] = svc(n, fmt.Sprintf("172.30.9.%d", i), 80, []state.Endpoint{ep(fmt.Sprintf("10.190.0.%d", i), 80, false)})
			}
			out := r.render(renderInput{view: next, full: true, existing: first.active})
			final := NewFake()
			if err := final.Restore(ctx, out.data, RestoreFlags{}); err != nil {
				t.Fatal(err)
			}
			after := snapshot(final)
			txns := strings.SplitAfter(string(out.data), "COMMIT\n")
			if len(txns) < 10 {
				t.Fatalf("only %d transactions", len(txns))
			}
			for i, txn := range txns {
				if txn == "" {
					continue
				}
				// KUBE-SERVICES is replaced whole, atomically: the one
				// transaction not bounded.
				top := strings.Contains(txn, ":"+chainServices+" ")
				if n := strings.Count(txn, "\n"); n > 2*cfg.txnLines && !top {
					t.Errorf("transaction %d has %d lines, bound is %d", i, n, cfg.txnLines)
				}
				if err := f.Restore(ctx, []byte(txn), RestoreFlags{}); err != nil {
					t.Fatalf("transaction %d: %v", i, err)
				}
				now := snapshot(f)
				for _, c := range reachable(now, chainServices, chainNodePorts) {
					if !slices.Equal(now[c], before[c]) && !slices.Equal(now[c], after[c]) {
						t.Fatalf("after transaction %d chain %s is reachable but neither old nor new:\n%s", i, c, strings.Join(now[c], "\n"))
					}
				}
			}
			if got := snapshot(f); fmt.Sprint(got) != fmt.Sprint(after) {
				t.Error("transactions applied one by one differ from the whole restore")
			}
		})
	}
}

func snapshot(f *Fake) map[string][]string {
	out := map[string][]string{}
	for name, c := range f.tables[tableNAT].chains {
		out[name] = slices.Clone(c.rules)
	}
	return out
}

func reachable(chains map[string][]string, roots ...string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(c string) {
		if seen[c] {
			return
		}
		seen[c] = true
		for _, r := range chains[c] {
			if tg := target(r); strings.HasPrefix(tg, "KUBE-") && tg != chainMarkMasq {
				walk(tg)
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// TestKernelBucketedDispatchAcrossTheThreshold syncs kernelView with a
// threshold of 5 Service ports on both backends, then adds a sixth Service
// (bucketed) and removes it again (linear), each by a partial sync: at
// every step a client in the namespace reaches web's backend through its
// ClusterIP and the Service without endpoints refuses at once. On nft the
// transactions are made tiny so that the split restore is exercised too.
func TestKernelBucketedDispatchAcrossTheThreshold(t *testing.T) {
	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			ns := scratchNS(t, backend)
			ctx := context.Background()
			serviceRoute(t, ns)
			p, err := New(ctx, Options{NetNS: ns, Backend: backend, BucketThreshold: 5,
				LocalDetect: LocalDetect{Mode: LocalClusterCIDR, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
			if err != nil {
				t.Fatal(err)
			}
			if backend == "nft" {
				if p.r.cfg.txnLines == 0 {
					t.Fatal("the nft backend does not split its restores")
				}
				p.r.cfg.txnLines = 6
			}
			buckets := func() int {
				return strings.Count(sh(t, ns, "iptables-"+backend+"-save -t nat"), "\n:"+prefixSVCB)
			}
			v := kernelView()
			mustSync(t, p, v, &state.Changes{Full: true})
			if n := buckets(); n != 0 {
				t.Errorf("%d bucket chains at the threshold", n)
			}
			assertKernelMatches(t, p, ns, v)
			assertTraffic(t, ns)

			sixth := spn("ns2", "sixth", "http")
			v.Services[sixth] = svc(sixth, "172.30.0.46", 80, []state.Endpoint{ep("10.180.0.1", 8080, true)})
			if full, _ := mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{sixth: {}}}); full {
				t.Error("adding a Service caused a full sync")
			}
			if n := buckets(); n != 272 {
				t.Errorf("%d bucket chains above the threshold, want 272", n)
			}
			assertKernelMatches(t, p, ns, v)
			assertTraffic(t, ns)

			delete(v.Services, sixth)
			mustSync(t, p, v, &state.Changes{Services: map[state.ServicePortName]struct{}{sixth: {}}})
			if n := buckets(); n != 0 {
				t.Errorf("%d bucket chains left below the threshold", n)
			}
			assertKernelMatches(t, p, ns, v)
			assertTraffic(t, ns)
			if err := p.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCleanupOnTheNFTBackendDeletesInBoundedTransactions(t *testing.T) {
	ctx := context.Background()
	p, f := newTestProxier(t, Options{BucketThreshold: 3, LocalDetect: LocalDetect{Mode: LocalNodeCIDR}})
	p.r.cfg.txnLines = 50
	mustSync(t, p, manyServices(5), &state.Changes{Full: true})
	n := len(f.Restores)
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	commits := 0
	for _, in := range f.Restores[n:] {
		commits += strings.Count(string(in), "COMMIT\n")
	}
	if commits < 10 {
		t.Errorf("cleanup of ~300 chains took %d transactions; want chunks of 50", commits)
	}
	for _, c := range f.Chains(tableNAT) {
		if strings.HasPrefix(c, "KUBE-") {
			t.Errorf("cleanup left %s", c)
		}
	}
}
