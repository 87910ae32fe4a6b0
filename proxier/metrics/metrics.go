package metrics

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/klog/v2"
)

// Names, help texts, labels and buckets follow kube-proxy v1.34
// (pkg/proxy/metrics/metrics.go and the v1.34 metrics reference): dashboards
// and alerts written for kube-proxy must work unchanged.

const subsystem = "kubeproxy"

// Label names kube-proxy uses.
const (
	LabelIPFamily      = "ip_family"
	LabelTable         = "table"
	LabelTrafficPolicy = "traffic_policy"
	LabelCode          = "code"
)

// syncBuckets is ExponentialBuckets(0.001, 2, 15): 1ms .. ~16s.
var syncBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// programmingBuckets: 0.25s, 0.5s, 1..59s, 60..115s by 5, 2..5min by 30s,
// with a leading 0 bucket as kube-proxy's merge() produces.
var programmingBuckets = mergeBuckets(
	prometheus.LinearBuckets(0.25, 0.25, 2),
	prometheus.LinearBuckets(1, 1, 59),
	prometheus.LinearBuckets(60, 5, 12),
	prometheus.LinearBuckets(120, 30, 7),
)

func mergeBuckets(slices ...[]float64) []float64 {
	out := make([]float64, 1) // kube-proxy starts with a 0 bucket
	for _, s := range slices {
		out = append(out, s...)
	}
	return out
}

var (
	// SyncProxyRulesLatency is the latency of one sync, full or partial.
	SyncProxyRulesLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_duration_seconds",
		Help:      "SyncProxyRules latency in seconds",
		Buckets:   syncBuckets,
	}, []string{LabelIPFamily})

	// SyncFullProxyRulesLatency is the latency of one full sync.
	SyncFullProxyRulesLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: subsystem,
		Name:      "sync_full_proxy_rules_duration_seconds",
		Help:      "SyncProxyRules latency in seconds for full resyncs",
		Buckets:   syncBuckets,
	}, []string{LabelIPFamily})

	// SyncPartialProxyRulesLatency is the latency of one partial sync.
	SyncPartialProxyRulesLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: subsystem,
		Name:      "sync_partial_proxy_rules_duration_seconds",
		Help:      "SyncProxyRules latency in seconds for partial resyncs",
		Buckets:   syncBuckets,
	}, []string{LabelIPFamily})

	// SyncProxyRulesLastTimestamp is when rules were last synced successfully.
	SyncProxyRulesLastTimestamp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_last_timestamp_seconds",
		Help:      "The last time proxy rules were successfully synced",
	}, []string{LabelIPFamily})

	// SyncProxyRulesLastQueuedTimestamp is when a sync was last queued; much
	// later than the last sync timestamp means the proxier is hung.
	SyncProxyRulesLastQueuedTimestamp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_last_queued_timestamp_seconds",
		Help:      "The last time a sync of proxy rules was queued",
	}, []string{LabelIPFamily})

	// NetworkProgrammingLatency is from the API-side change (EndpointSlice
	// last-change-trigger-time) to the rules being programmed.
	NetworkProgrammingLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: subsystem,
		Name:      "network_programming_duration_seconds",
		Help:      "In Cluster Network Programming Latency in seconds",
		Buckets:   programmingBuckets,
	}, []string{LabelIPFamily})

	// EndpointChangesPending counts endpoint changes not yet synced.
	EndpointChangesPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_endpoint_changes_pending",
		Help:      "Pending proxy rules Endpoint changes",
	})

	// EndpointChangesTotal counts endpoint changes seen.
	EndpointChangesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_endpoint_changes_total",
		Help:      "Cumulative proxy rules Endpoint changes",
	})

	// ServiceChangesPending counts service changes not yet synced.
	ServiceChangesPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_service_changes_pending",
		Help:      "Pending proxy rules Service changes",
	})

	// ServiceChangesTotal counts service changes seen.
	ServiceChangesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_service_changes_total",
		Help:      "Cumulative proxy rules Service changes",
	})

	// SyncProxyRulesNoLocalEndpointsTotal counts Services with a Local
	// traffic policy ("internal" or "external") and no local endpoint.
	SyncProxyRulesNoLocalEndpointsTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_no_local_endpoints_total",
		Help:      "Number of services with a Local traffic policy and no endpoints",
	}, []string{LabelIPFamily, LabelTrafficPolicy})

	// ProxyHealthzTotal counts /healthz answers by HTTP status.
	ProxyHealthzTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "proxy_healthz_total",
		Help:      "Cumulative proxy healthz HTTP status",
	}, []string{LabelCode})

	// ProxyLivezTotal counts /livez answers by HTTP status.
	ProxyLivezTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "proxy_livez_total",
		Help:      "Cumulative proxy livez HTTP status",
	}, []string{LabelCode})

	// ReconcileConntrackFlowsLatency is the duration of one conntrack
	// reconciliation (stale UDP flow cleanup).
	ReconcileConntrackFlowsLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: subsystem,
		Name:      "conntrack_reconciler_sync_duration_seconds",
		Help:      "ReconcileConntrackFlowsLatency latency in seconds",
		Buckets:   syncBuckets,
	}, []string{LabelIPFamily})

	// ReconcileConntrackFlowsDeletedEntriesTotal counts flows the reconciler
	// deleted.
	ReconcileConntrackFlowsDeletedEntriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "conntrack_reconciler_deleted_entries_total",
		Help:      "Cumulative conntrack flows deleted by conntrack reconciler",
	}, []string{LabelIPFamily})

	// IPTablesRestoreFailuresTotal counts failed iptables-restore runs
	// (iptables and ipvs modes).
	IPTablesRestoreFailuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_iptables_restore_failures_total",
		Help:      "Cumulative proxy iptables restore failures",
	}, []string{LabelIPFamily})

	// IPTablesPartialRestoreFailuresTotal counts partial restores that
	// failed and fell back to a full one.
	IPTablesPartialRestoreFailuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_iptables_partial_restore_failures_total",
		Help:      "Cumulative proxy iptables partial restore failures",
	}, []string{LabelIPFamily})

	// IPTablesRulesTotal is the number of rules the proxier owns per table.
	IPTablesRulesTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_iptables_total",
		Help:      "Total number of iptables rules owned by kube-proxy",
	}, []string{LabelIPFamily, LabelTable})

	// IPTablesRulesLastSync is the number of rules written by the last sync.
	IPTablesRulesLastSync = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_iptables_last",
		Help:      "Number of iptables rules written by kube-proxy in last sync",
	}, []string{LabelIPFamily, LabelTable})

	// NFTablesSyncFailuresTotal counts failed nftables transactions.
	NFTablesSyncFailuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_nftables_sync_failures_total",
		Help:      "Cumulative proxy nftables sync failures",
	}, []string{LabelIPFamily})

	// NFTablesCleanupFailuresTotal counts failed stale-chain cleanups.
	NFTablesCleanupFailuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: subsystem,
		Name:      "sync_proxy_rules_nftables_cleanup_failures_total",
		Help:      "Cumulative proxy nftables cleanup failures",
	}, []string{LabelIPFamily})
)

// Registry is the proxier's own registry; /metrics serves it. It holds the
// metrics every mode has, plus Go and process collectors as kube-proxy's
// legacy registry does. Mode-specific ones join through RegisterMode.
var Registry = prometheus.NewRegistry()

// core are registered whatever the mode, like kube-proxy's RegisterMetrics.
var core = []prometheus.Collector{
	SyncProxyRulesLatency,
	SyncProxyRulesLastQueuedTimestamp,
	SyncProxyRulesLastTimestamp,
	EndpointChangesPending,
	EndpointChangesTotal,
	ServiceChangesPending,
	ServiceChangesTotal,
	ProxyHealthzTotal,
	ProxyLivezTotal,
	NetworkProgrammingLatency,
	SyncProxyRulesNoLocalEndpointsTotal,
	ReconcileConntrackFlowsLatency,
	ReconcileConntrackFlowsDeletedEntriesTotal,
}

// byMode lists what kube-proxy registers only in a given mode, so a scrape
// of an nftables proxier shows no iptables metric, as with kube-proxy.
var byMode = map[string][]prometheus.Collector{
	"iptables": {
		SyncFullProxyRulesLatency,
		SyncPartialProxyRulesLatency,
		IPTablesRestoreFailuresTotal,
		IPTablesPartialRestoreFailuresTotal,
		IPTablesRulesTotal,
		IPTablesRulesLastSync,
	},
	"ipvs": {
		IPTablesRestoreFailuresTotal,
	},
	"nftables": {
		NFTablesSyncFailuresTotal,
		NFTablesCleanupFailuresTotal,
	},
}

func init() {
	Registry.MustRegister(collectors.NewGoCollector())
	Registry.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	Registry.MustRegister(core...)
}

var registerMu sync.Mutex

// RegisterMode adds the metrics kube-proxy exposes only in mode ("iptables",
// "ipvs", "nftables"). Calling it again, or for a second mode, is harmless.
func RegisterMode(mode string) {
	registerMu.Lock()
	defer registerMu.Unlock()
	for _, c := range byMode[mode] {
		if err := Registry.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				// Only a programming error (clashing descriptors) lands here.
				klog.ErrorS(err, "Cannot register metric", "mode", mode)
			}
		}
	}
}

// SinceInSeconds is the time since start in seconds, the unit of every
// duration metric here.
func SinceInSeconds(start time.Time) float64 {
	return time.Since(start).Seconds()
}
