package nftables

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"
	"github.com/proxyproof/proxyproof/proxier/state"

	"sigs.k8s.io/knftables"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// scratchNS makes an empty network namespace for one kernel test (loopback
// only, no route anywhere) and removes it at the end.
func scratchNS(t testing.TB) string {
	t.Helper()
	return netnstest.New(t, "nftables", "nft")
}

func nftIn(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := netns.Cmd(ns, "nft", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func kernelProxier(t testing.TB, ns string) *Proxier {
	t.Helper()
	p, err := New(Options{NetNS: ns, MasqueradeBit: 14,
		LocalDetect: LocalDetect{Mode: DetectLocalClusterCIDR, ClusterCIDRs: prefixes("10.0.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKernelAcceptsEveryGoldenRuleset(t *testing.T) {
	ns := scratchNS(t)
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := newFakeProxier(t, nil)
			if _, err := p.Sync(context.Background(), tc.view, full()); err != nil {
				t.Fatal(err)
			}
			checkInKernel(t, ns, fake.Dump())
		})
	}
}

// checkInKernel runs nft -c -f on a Fake dump inside ns.
func checkInKernel(t testing.TB, ns, dump string) {
	t.Helper()
	cmd := netns.Cmd(ns, "nft", "-c", "-f", "-")
	cmd.Stdin = strings.NewReader(dump)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -c rejected the ruleset: %v\n%s\n--- ruleset:\n%s", err, out, dump)
	}
}

// webAndDB are two Services: web (NodePort 30080, a local and a remote
// endpoint) and db (one local endpoint).
func webAndDB() (web, db *state.ServicePort) {
	web = svc("ns1", "web", "http", "172.30.0.10", 80, ep("10.0.1.5", 8080, true), ep("10.0.2.5", 8080, false))
	web.NodePort = 30080
	setEndpoints(web, web.ClusterEndpoints...)
	db = svc("ns1", "db", "", "172.30.0.20", 5432, ep("10.0.1.2", 5432, true))
	return web, db
}

func TestKernelFullIncrementalAndCleanupLeaveTheExpectedTable(t *testing.T) {
	ns := scratchNS(t)
	ctx := context.Background()
	p := kernelProxier(t, ns)
	web, db := webAndDB()
	v := view(web, db)
	res, err := p.Sync(ctx, v, full())
	if err != nil {
		t.Fatalf("full sync: %v", err)
	}
	if !res.Full || res.Rules["chains"] == 0 {
		t.Fatalf("full sync result %+v", res)
	}
	table := nftIn(t, ns, "list", "table", "ip", "kube-proxy")
	for _, want := range []string{"172.30.0.10 . tcp . 80 : goto service-", "meta l4proto tcp dnat ip to numgen random mod 65536", "map @endpoints-0", "tcp . 30080 : goto external-",
		": 10.0.2.5 . 8080", ": 10.0.1.5 . 8080", "ip saddr . ip daddr @hairpin-ips"} {
		if !strings.Contains(table, want) {
			t.Errorf("after full sync the table lacks %q:\n%s", want, table)
		}
	}

	// One endpoint moves: only web's chains and elements change.
	setEndpoints(web, ep("10.0.1.5", 8080, true), ep("10.0.3.5", 8080, false))
	if _, err := p.Sync(ctx, v, changed(web.Name)); err != nil {
		t.Fatalf("partial sync: %v", err)
	}
	table = nftIn(t, ns, "list", "table", "ip", "kube-proxy")
	if !strings.Contains(table, "10.0.3.5 . 8080") || strings.Contains(table, "10.0.2.5 . 8080") {
		t.Errorf("after the endpoint change the table is wrong:\n%s", table)
	}
	// Removing db leaves its chain flushed until a later sync deletes it.
	delete(v.Services, db.Name)
	if _, err := p.Sync(ctx, v, changed(db.Name)); err != nil {
		t.Fatalf("partial sync removing db: %v", err)
	}
	table = nftIn(t, ns, "list", "table", "ip", "kube-proxy")
	if strings.Contains(table, "172.30.0.20") {
		t.Errorf("db's elements survived its removal:\n%s", table)
	}
	p.now = func() time.Time { return time.Now().Add(2 * staleChainDelay) }
	if _, err := p.Sync(ctx, v, changed()); err != nil {
		t.Fatalf("sync deleting stale chains: %v", err)
	}
	if table = nftIn(t, ns, "list", "table", "ip", "kube-proxy"); strings.Contains(table, "ns1/db/") {
		t.Errorf("db's chains were not deleted after the delay:\n%s", table)
	}

	for i := 0; i < 2; i++ {
		if err := p.Cleanup(ctx); err != nil {
			t.Fatalf("cleanup #%d: %v", i+1, err)
		}
	}
	if out := nftIn(t, ns, "list", "tables"); strings.Contains(out, "kube-proxy") {
		t.Errorf("cleanup left the table: %s", out)
	}
}

func TestKernelFullResyncRestoresWhatSomeoneDeleted(t *testing.T) {
	ns := scratchNS(t)
	ctx := context.Background()
	p := kernelProxier(t, ns)
	v := goldenCases()[2].view // nodeport
	if _, err := p.Sync(ctx, v, full()); err != nil {
		t.Fatal(err)
	}
	want := nftIn(t, ns, "list", "table", "ip", "kube-proxy")
	nftIn(t, ns, "delete", "element", "ip", "kube-proxy", "service-ips", "{ 172.30.0.10 . tcp . 80 }")
	nftIn(t, ns, "flush", "chain", "ip", "kube-proxy", "masquerading")
	nftIn(t, ns, "add", "rule", "ip", "kube-proxy", "services", "drop")
	if got := nftIn(t, ns, "list", "table", "ip", "kube-proxy"); got == want {
		t.Fatal("tampering did not change the table")
	}
	if _, err := p.Sync(ctx, v, full()); err != nil {
		t.Fatalf("resync: %v", err)
	}
	if got := nftIn(t, ns, "list", "table", "ip", "kube-proxy"); got != want {
		t.Errorf("resync did not restore the table:\n--- want\n%s\n--- got\n%s", want, got)
	}
}

func TestPreflightFailsClearlyWithoutANamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root")
	}
	p, err := New(Options{NetNS: "nftables-does-not-exist"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Sync(context.Background(), view(), full())
	if err == nil || !strings.Contains(err.Error(), "nftables mode unavailable") {
		t.Fatalf("want a clear preflight error, got %v", err)
	}
}

var _ knftables.Interface = &nsNFT{}

// A full sync of a thousand Service ports sends a batch mapped outside the
// Go heap (batchbuf.go); the kernel must get all of it, and a second full
// sync, another such batch, must find the first one's buffer gone cleanly.
func TestKernelFullSyncFromAMappedBatch(t *testing.T) {
	ns := scratchNS(t)
	p := kernelProxier(t, ns)
	v := benchView(1000, 3)
	if len(v.Services)*batchBytesPerServicePort < offHeapMin {
		t.Fatalf("%d service ports would not use a mapped batch", len(v.Services))
	}
	for i := range 2 {
		if _, err := p.Sync(context.Background(), v, full()); err != nil {
			t.Fatalf("full sync %d: %v", i+1, err)
		}
	}
	listed := nftIn(t, ns, "list", "map", "ip", tableName, serviceIPsMap)
	if n := strings.Count(listed, "goto "); n != len(v.Services) {
		t.Errorf("%s holds %d elements, want %d", serviceIPsMap, n, len(v.Services))
	}
	// Sent is spent: the mapping goes back at once, not at the next GC.
	fs := p.fams[v.Family]
	b := fs.be.newBatch(fs.rc, offHeapMin)
	b.addChain("mapped-batch-test")
	if err := fs.be.run(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.(*nlWriter).mapped != nil {
		t.Errorf("a sent batch still holds its mapped buffer")
	}
}
