package conntrack

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"
)

// scrape gathers the monitor the way /metrics does and returns name -> value.
func scrape(t *testing.T, m *UsageMonitor) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			out[mf.GetName()] = metric.GetGauge().GetValue() + metric.GetCounter().GetValue()
		}
	}
	return out
}

func TestKernelUsageEntriesRiseWithConnectionsThroughTheNamespace(t *testing.T) {
	ns := netnstest.New(t, "ctusage", "nft")
	// The kernel tracks a namespace's flows only once a rule there needs
	// conntrack, as the proxier's rules do; this one only counts.
	rules := "table ip t {\n chain out {\n  type filter hook output priority 0;\n  ct state new counter\n }\n}\n"
	cmd := netns.Cmd(ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", ns, err, out)
	}
	m := NewUsageMonitor(NewUsageReader(ns), 70)
	before := scrape(t, m)
	if before[MetricLimit] == 0 {
		t.Fatalf("limit is 0 in a scrape of a fresh namespace: %v", before)
	}
	for _, name := range []string{MetricInsertFailed, MetricDrop, MetricEarlyDrop} {
		if _, ok := before[name]; !ok {
			t.Errorf("the scrape lacks %s: %v", name, before)
		}
	}

	ln, err := netns.Listen(ns, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	const conns = 8
	for range conns {
		c, err := netns.Dial(context.Background(), &net.Dialer{}, ns, "tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	after := scrape(t, m)
	t.Logf("before %v; after %d connections %v", before, conns, after)
	if got := after[MetricEntries] - before[MetricEntries]; got < conns {
		t.Errorf("%s went %v -> %v after %d connections; want a rise of at least %d",
			MetricEntries, before[MetricEntries], after[MetricEntries], conns, conns)
	}
}
