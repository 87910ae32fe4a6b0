package app

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/conntrack"
	"github.com/proxyproof/proxyproof/proxier/metrics"
)

// usageCheckPeriod is how often the conntrack warning is checked without a
// scrape: short against how fast a table fills under a connection storm
// (minutes), cheap (two sysctls and one /proc file).
const usageCheckPeriod = 10 * time.Second

var (
	usageMu sync.Mutex
	// usageRegistered is the monitor on /metrics; a proxier run again in
	// one process (tests) replaces it instead of failing to register.
	usageRegistered prometheus.Collector
)

// startConntrackUsage exposes the node's conntrack usage on /metrics and
// warns in the log above cfg.ConntrackWarnPercent until ctx ends.
func startConntrackUsage(ctx context.Context, cfg *config.Config) {
	m := conntrack.NewUsageMonitor(conntrack.NewUsageReader(cfg.NetNS), cfg.ConntrackWarnPercent)
	usageMu.Lock()
	if usageRegistered != nil {
		metrics.Registry.Unregister(usageRegistered)
	}
	metrics.Registry.MustRegister(m)
	usageRegistered = m
	usageMu.Unlock()
	go m.Run(ctx, usageCheckPeriod)
}
