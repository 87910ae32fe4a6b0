package ipvs

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// The VM gets only the arguments, not the environment: IPVS_BENCH_SCALE
// sets the flag's default on the host and TestKernelBenchmarkSync passes
// the flag on.
var (
	benchScale   = flag.String("ipvs.bench-scale", envOr("IPVS_BENCH_SCALE", "2000x5"), "BenchmarkSync scale: SERVICESxENDPOINTS")
	benchChanges = flag.Int("ipvs.bench-changes", 200, "BenchmarkSync: one-endpoint changes timed for the p50/p99")
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// parseScale reads "SERVICESxENDPOINTS".
func parseScale(s string) (services, endpoints int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		services, err = strconv.Atoi(a)
		if err == nil {
			endpoints, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || services < 1 || endpoints < 1 || services > 65536 || endpoints > 256 {
		return 0, 0, fmt.Errorf("benchmark scale %q: want SERVICESxENDPOINTS, 1..65536 x 1..256", s)
	}
	return services, endpoints, nil
}

// TestKernelBenchmarkSync runs BenchmarkSync in the kernel VM, at
// -ipvs.bench-scale (or $IPVS_BENCH_SCALE). It boots the VM itself rather
// than through RunTestInVM to give a large scale more guest memory.
func TestKernelBenchmarkSync(t *testing.T) {
	if kernelvm.InVM() {
		t.Skip("the benchmark itself runs as BenchmarkSync")
	}
	if testing.Short() {
		t.Skip("slow: boots the kernel VM")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel VM: needs root")
	}
	services, endpoints, err := parseScale(*benchScale)
	if err != nil {
		t.Fatal(err)
	}
	if err := kernelvm.EnsureImage(context.Background()); err != nil {
		t.Fatalf("kernel VM image: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	timeout := 10 * time.Minute
	if dl, ok := t.Deadline(); ok {
		timeout = time.Until(dl) - 30*time.Second
	}
	// About 1 KiB of kernel memory per real server, 4 per virtual server
	// and address, plus the Go side: 1 GiB is plenty up to ~20,000 real
	// servers.
	mem := 1024
	if services*endpoints > 20000 {
		mem = 3072
	}
	// benchtime 1x: the setup (two full syncs) is the expensive part and
	// the change latencies are timed inside.
	args := []string{"-test.v=true", "-test.run", "^$", "-test.bench", "^BenchmarkSync$", "-test.benchtime", "1x", "-test.benchmem",
		"-ipvs.bench-scale=" + *benchScale, "-ipvs.bench-changes=" + strconv.Itoa(*benchChanges)}
	res, err := kernelvm.Run(context.Background(), kernelvm.Options{Binary: self, Args: args, Timeout: timeout, MemoryMB: mem})
	t.Logf("kernel VM output (%d MiB):\n%s", mem, res.Output)
	if err != nil {
		t.Fatalf("kernel VM: %v", err)
	}
	t.Logf("kernel VM: boot %s, total %s, exit code %d", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond), res.ExitCode)
	if res.ExitCode != 0 {
		t.Errorf("kernel VM: the benchmark failed (exit code %d); its output is above", res.ExitCode)
	}
	if !strings.Contains(string(res.Output), "first-full-ms") {
		t.Errorf("kernel VM: the benchmark reported no figures")
	}
}

// benchProxier is a proxier in a fresh namespace whose kernel calls are
// timed into st.
func benchProxier(b *testing.B, st *opStats) (*Proxier, string) {
	ns := fmt.Sprintf("ipvsbench%d", os.Getpid())
	_ = ipCmd("netns", "del", ns)
	if err := ipCmd("netns", "add", ns); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ipCmd("netns", "del", ns) })
	// IPVS refuses real servers in a namespace without a local routing
	// table (one that never had an address): bring loopback up.
	if err := ipCmd("-n", ns, "link", "set", "lo", "up"); err != nil {
		b.Fatal(err)
	}
	h, err := NewHandle(ns)
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(context.Background(), Options{
		NetNS:  ns,
		IPVS:   timeIPVS(h, st),
		Links:  timeLinks(&netlinkLinks{ns: ns, family: v1.IPv4Protocol}, st),
		IPSet:  timeIPSet(&netlinkIPSet{ns: ns}, st),
		Runner: timedRunner{&iptables.Exec{NetNS: ns, Family: v1.IPv4Protocol}, st},
	})
	if err != nil {
		b.Fatal(err)
	}
	return p, ns
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// BenchmarkSync measures syncs on the real kernel at -ipvs.bench-scale:
// the first full sync (first-full-ms, with where its time went logged),
// a second full sync with nothing to do (steady-full-ms), the p50/p99 of
// -ipvs.bench-changes partial syncs each after one endpoint changed, and
// ns/op of the same. In the VM only.
func BenchmarkSync(b *testing.B) {
	if !kernelvm.InVM() {
		b.Skip("needs ip_vs: run TestKernelBenchmarkSync, which runs this in the kernel VM")
	}
	services, endpoints, err := parseScale(*benchScale)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	st := newOpStats()
	p, _ := benchProxier(b, st)
	sps := manyServicesEps(services, endpoints)
	v := view(sps...)

	st.reset()
	start := time.Now()
	if _, err := p.Sync(ctx, v, full()); err != nil {
		b.Fatal(err)
	}
	firstFull := time.Since(start)
	b.Logf("first full sync at %dx%d: %s\n%s", services, endpoints, firstFull.Round(time.Millisecond), st.report(firstFull))

	st.reset()
	start = time.Now()
	if _, err := p.Sync(ctx, v, full()); err != nil {
		b.Fatal(err)
	}
	steadyFull := time.Since(start)
	b.Logf("steady full sync: %s\n%s", steadyFull.Round(time.Millisecond), st.report(steadyFull))

	changes := 0
	change := func() {
		n := changes % len(sps)
		eps := append([]state.Endpoint{}, sps[n].ClusterEndpoints...)
		eps[0].IP = netip.AddrFrom4([4]byte{10, 200, byte(changes / 256), byte(changes % 256)})
		changes++
		sps[n] = svc(sps[n].Name.Name, sps[n].ClusterIP.String(), eps)
		v.Services[sps[n].Name] = sps[n]
		if _, err := p.Sync(ctx, v, &state.Changes{Services: map[state.ServicePortName]struct{}{sps[n].Name: {}}}); err != nil {
			b.Fatal(err)
		}
	}
	st.reset()
	lat := make([]time.Duration, 0, *benchChanges)
	var sum time.Duration
	for range *benchChanges {
		start := time.Now()
		change()
		d := time.Since(start)
		lat = append(lat, d)
		sum += d
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		b.Logf("%d one-endpoint changes: p50 %s p99 %s max %s\n%s", len(lat), percentile(lat, 0.5), percentile(lat, 0.99), lat[len(lat)-1], st.report(sum))
		b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "change-p50-us")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "change-p99-us")
	}

	b.ResetTimer()
	for range b.N {
		change()
	}
	b.StopTimer()
	b.ReportMetric(float64(firstFull.Milliseconds()), "first-full-ms")
	b.ReportMetric(float64(steadyFull.Milliseconds()), "steady-full-ms")
	start = time.Now()
	if err := p.Cleanup(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("cleanup: %s", time.Since(start).Round(time.Millisecond))
}
