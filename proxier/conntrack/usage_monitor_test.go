package conntrack

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/klog/v2"
)

// fakeUsage returns its readings in turn, the last one forever.
type fakeUsage struct {
	readings []Usage
	err      error
}

func (f *fakeUsage) ReadUsage() (Usage, error) {
	if f.err != nil {
		return Usage{}, f.err
	}
	u := f.readings[0]
	if len(f.readings) > 1 {
		f.readings = f.readings[1:]
	}
	return u, nil
}

func captureLogs(t *testing.T) *bytes.Buffer {
	t.Helper()
	var logs bytes.Buffer
	klog.LogToStderr(false)
	// The INFO stream holds every severity once; SetOutput would copy errors thrice.
	klog.SetOutputBySeverity("INFO", &logs)
	t.Cleanup(func() { klog.SetOutput(nil); klog.LogToStderr(true) })
	return &logs
}

func TestTheUsageMetricsShowWhatTheKernelSaysAtScrapeTime(t *testing.T) {
	src := &fakeUsage{readings: []Usage{
		{Entries: 120, Limit: 1000, InsertFailed: 3, Drop: 2, EarlyDrop: 1},
		{Entries: 450, Limit: 1000, InsertFailed: 9, Drop: 5, EarlyDrop: 4},
	}}
	m := NewUsageMonitor(src, 70)
	for _, u := range slices.Clone(src.readings) {
		if err := testutil.CollectAndCompare(m, strings.NewReader(exposition(u))); err != nil {
			t.Errorf("scrape with the kernel at %+v: %v", u, err)
		}
	}
}

// exposition is the text a scrape must show for u.
func exposition(u Usage) string {
	return fmt.Sprintf(`# HELP proxyproof_conntrack_drop_total %s
# TYPE proxyproof_conntrack_drop_total counter
proxyproof_conntrack_drop_total %d
# HELP proxyproof_conntrack_early_drop_total %s
# TYPE proxyproof_conntrack_early_drop_total counter
proxyproof_conntrack_early_drop_total %d
# HELP proxyproof_conntrack_entries %s
# TYPE proxyproof_conntrack_entries gauge
proxyproof_conntrack_entries %d
# HELP proxyproof_conntrack_insert_failed_total %s
# TYPE proxyproof_conntrack_insert_failed_total counter
proxyproof_conntrack_insert_failed_total %d
# HELP proxyproof_conntrack_limit %s
# TYPE proxyproof_conntrack_limit gauge
proxyproof_conntrack_limit %d
`, help(descDrop), u.Drop, help(descEarlyDrop), u.EarlyDrop, help(descEntries), u.Entries,
		help(descInsertFailed), u.InsertFailed, help(descLimit), u.Limit)
}

// help digs the help text out of a Desc, which has no getter.
func help(d *prometheus.Desc) string {
	s := d.String()
	i := strings.Index(s, `help: "`) + len(`help: "`)
	return s[i : i+strings.Index(s[i:], `"`)]
}

func TestTheWarningIsLoggedOncePerCrossingAndOnceWhenBackBelow(t *testing.T) {
	logs := captureLogs(t)
	src := &fakeUsage{readings: []Usage{
		{Entries: 500, Limit: 1000}, // 50%: quiet
		{Entries: 700, Limit: 1000}, // exactly 70%: not above
		{Entries: 701, Limit: 1000}, // above: warn
		{Entries: 900, Limit: 1000}, // still above: quiet
		{Entries: 950, Limit: 1000}, // still above: quiet
		{Entries: 300, Limit: 1000}, // back below: say so
		{Entries: 200, Limit: 1000}, // quiet
		{Entries: 800, Limit: 1000}, // above again: warn again
	}}
	m := NewUsageMonitor(src, 70)
	for range 8 {
		m.Check()
	}
	klog.Flush()
	out := logs.String()
	if n := strings.Count(out, "conntrack table above its warning share"); n != 2 {
		t.Errorf("warned %d times over two crossings, want 2; logs:\n%s", n, out)
	}
	if n := strings.Count(out, "back below its warning share"); n != 1 {
		t.Errorf("said back below %d times, want 1; logs:\n%s", n, out)
	}
	if !strings.Contains(out, `entries=701 limit=1000 percent=70 warnPercent=70`) {
		t.Errorf("the warning does not give entries, limit and share; logs:\n%s", out)
	}
}

func TestAWarnPercentOfZeroNeverWarnsButKeepsTheMetrics(t *testing.T) {
	logs := captureLogs(t)
	m := NewUsageMonitor(&fakeUsage{readings: []Usage{{Entries: 999, Limit: 1000}}}, 0)
	if n := testutil.CollectAndCount(m); n != 5 {
		t.Errorf("collected %d metrics, want 5", n)
	}
	m.Check()
	klog.Flush()
	if strings.Contains(logs.String(), "warning share") {
		t.Errorf("warned with warnPercent 0:\n%s", logs.String())
	}
}

func TestAnUnreadableTableLeavesTheMetricsOutAndSaysWhyOnce(t *testing.T) {
	logs := captureLogs(t)
	m := NewUsageMonitor(&fakeUsage{err: errors.New("open /proc/sys/net/netfilter/nf_conntrack_count: no such file")}, 70)
	for range 3 {
		if n := testutil.CollectAndCount(m); n != 0 {
			t.Errorf("collected %d metrics from an unreadable table, want 0", n)
		}
	}
	klog.Flush()
	if n := strings.Count(logs.String(), "nf_conntrack_count: no such file"); n != 1 {
		t.Errorf("the read error was logged %d times, want once:\n%s", n, logs.String())
	}
}
