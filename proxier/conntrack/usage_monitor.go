package conntrack

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Metric names of the conntrack usage. kube-proxy has none, so they carry
// our prefix rather than kubeproxy_ (a dashboard must not mistake them for
// upstream's).
const (
	MetricEntries      = "proxyproof_conntrack_entries"
	MetricLimit        = "proxyproof_conntrack_limit"
	MetricInsertFailed = "proxyproof_conntrack_insert_failed_total"
	MetricDrop         = "proxyproof_conntrack_drop_total"
	MetricEarlyDrop    = "proxyproof_conntrack_early_drop_total"
)

var (
	descEntries = prometheus.NewDesc(MetricEntries,
		"Conntrack entries in the proxier's network namespace (nf_conntrack_count)", nil, nil)
	descLimit = prometheus.NewDesc(MetricLimit,
		"Conntrack table limit (nf_conntrack_max, global to the kernel)", nil, nil)
	descInsertFailed = prometheus.NewDesc(MetricInsertFailed,
		"Conntrack entries the kernel could not insert, summed over CPUs (/proc/net/stat/nf_conntrack insert_failed)", nil, nil)
	descDrop = prometheus.NewDesc(MetricDrop,
		"Packets dropped because no conntrack entry could be made, summed over CPUs (/proc/net/stat/nf_conntrack drop)", nil, nil)
	descEarlyDrop = prometheus.NewDesc(MetricEarlyDrop,
		"Conntrack entries evicted early to make room in a full table, summed over CPUs", nil, nil)
)

// UsageMonitor exposes the conntrack usage as metrics, read when scraped,
// and warns in the log when the entries cross WarnPercent of the limit.
// Run checks on a period too, so the warning does not depend on anyone
// scraping.
type UsageMonitor struct {
	src UsageSource
	// warnPercent 0 disables the warning; the metrics stay.
	warnPercent int

	mu       sync.Mutex
	above    bool
	readFail bool
}

var _ prometheus.Collector = &UsageMonitor{}

// NewUsageMonitor reads src and warns above warnPercent (1..100; 0 = never).
func NewUsageMonitor(src UsageSource, warnPercent int) *UsageMonitor {
	return &UsageMonitor{src: src, warnPercent: warnPercent}
}

func (m *UsageMonitor) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEntries, descLimit, descInsertFailed, descDrop, descEarlyDrop} {
		ch <- d
	}
}

// Collect reads the kernel now. A failed read leaves the metrics out of
// this scrape (logged once) rather than failing the whole /metrics page.
func (m *UsageMonitor) Collect(ch chan<- prometheus.Metric) {
	u, ok := m.Check()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(u.Entries))
	ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(u.Limit))
	ch <- prometheus.MustNewConstMetric(descInsertFailed, prometheus.CounterValue, float64(u.InsertFailed))
	ch <- prometheus.MustNewConstMetric(descDrop, prometheus.CounterValue, float64(u.Drop))
	ch <- prometheus.MustNewConstMetric(descEarlyDrop, prometheus.CounterValue, float64(u.EarlyDrop))
}

// Run calls Check every period until ctx ends.
func (m *UsageMonitor) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		m.Check()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check reads the usage and logs a crossing of the warning share: once when
// the entries go above it, once when they fall back to it or below.
func (m *UsageMonitor) Check() (Usage, bool) {
	u, err := m.src.ReadUsage()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if !m.readFail {
			klog.ErrorS(err, "Cannot read conntrack usage; its metrics are left out until it can")
		}
		m.readFail = true
		return Usage{}, false
	}
	m.readFail = false
	if m.warnPercent <= 0 || u.Limit == 0 {
		return u, true
	}
	percent := float64(u.Entries) * 100 / float64(u.Limit)
	above := u.Entries*100 > u.Limit*uint64(m.warnPercent)
	switch {
	case above && !m.above:
		klog.InfoS("Warning: conntrack table above its warning share; new connections fail when it is full",
			"entries", u.Entries, "limit", u.Limit, "percent", int(percent), "warnPercent", m.warnPercent,
			"insertFailed", u.InsertFailed, "drop", u.Drop)
	case !above && m.above:
		klog.InfoS("Conntrack table back below its warning share",
			"entries", u.Entries, "limit", u.Limit, "percent", int(percent), "warnPercent", m.warnPercent)
	}
	m.above = above
	return u, true
}
