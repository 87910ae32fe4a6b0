package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// expected is kube-proxy v1.34's list (metrics reference, kubeproxy_*),
// without the two nfacct-backed custom collectors.
var expected = []struct {
	name   string
	typ    dto.MetricType
	labels []string
	modes  []string // nil: every mode
}{
	{"kubeproxy_conntrack_reconciler_deleted_entries_total", dto.MetricType_COUNTER, []string{"ip_family"}, nil},
	{"kubeproxy_conntrack_reconciler_sync_duration_seconds", dto.MetricType_HISTOGRAM, []string{"ip_family"}, nil},
	{"kubeproxy_network_programming_duration_seconds", dto.MetricType_HISTOGRAM, []string{"ip_family"}, nil},
	{"kubeproxy_proxy_healthz_total", dto.MetricType_COUNTER, []string{"code"}, nil},
	{"kubeproxy_proxy_livez_total", dto.MetricType_COUNTER, []string{"code"}, nil},
	{"kubeproxy_sync_full_proxy_rules_duration_seconds", dto.MetricType_HISTOGRAM, []string{"ip_family"}, []string{"iptables"}},
	{"kubeproxy_sync_partial_proxy_rules_duration_seconds", dto.MetricType_HISTOGRAM, []string{"ip_family"}, []string{"iptables"}},
	{"kubeproxy_sync_proxy_rules_duration_seconds", dto.MetricType_HISTOGRAM, []string{"ip_family"}, nil},
	{"kubeproxy_sync_proxy_rules_endpoint_changes_pending", dto.MetricType_GAUGE, nil, nil},
	{"kubeproxy_sync_proxy_rules_endpoint_changes_total", dto.MetricType_COUNTER, nil, nil},
	{"kubeproxy_sync_proxy_rules_iptables_last", dto.MetricType_GAUGE, []string{"ip_family", "table"}, []string{"iptables"}},
	{"kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total", dto.MetricType_COUNTER, []string{"ip_family"}, []string{"iptables"}},
	{"kubeproxy_sync_proxy_rules_iptables_restore_failures_total", dto.MetricType_COUNTER, []string{"ip_family"}, []string{"iptables", "ipvs"}},
	{"kubeproxy_sync_proxy_rules_iptables_total", dto.MetricType_GAUGE, []string{"ip_family", "table"}, []string{"iptables"}},
	{"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", dto.MetricType_GAUGE, []string{"ip_family"}, nil},
	{"kubeproxy_sync_proxy_rules_last_timestamp_seconds", dto.MetricType_GAUGE, []string{"ip_family"}, nil},
	{"kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total", dto.MetricType_COUNTER, []string{"ip_family"}, []string{"nftables"}},
	{"kubeproxy_sync_proxy_rules_nftables_sync_failures_total", dto.MetricType_COUNTER, []string{"ip_family"}, []string{"nftables"}},
	{"kubeproxy_sync_proxy_rules_no_local_endpoints_total", dto.MetricType_GAUGE, []string{"ip_family", "traffic_policy"}, nil},
	{"kubeproxy_sync_proxy_rules_service_changes_pending", dto.MetricType_GAUGE, nil, nil},
	{"kubeproxy_sync_proxy_rules_service_changes_total", dto.MetricType_COUNTER, nil, nil},
}

// touch gives every vector one child so Gather and /metrics show it.
func touch() {
	SyncProxyRulesLatency.WithLabelValues("IPv4").Observe(0.01)
	SyncFullProxyRulesLatency.WithLabelValues("IPv4").Observe(0.01)
	SyncPartialProxyRulesLatency.WithLabelValues("IPv4").Observe(0.01)
	SyncProxyRulesLastTimestamp.WithLabelValues("IPv4").SetToCurrentTime()
	SyncProxyRulesLastQueuedTimestamp.WithLabelValues("IPv4").SetToCurrentTime()
	NetworkProgrammingLatency.WithLabelValues("IPv4").Observe(1)
	EndpointChangesPending.Set(0)
	EndpointChangesTotal.Add(0)
	ServiceChangesPending.Set(0)
	ServiceChangesTotal.Add(0)
	SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("IPv4", "internal").Set(0)
	ProxyHealthzTotal.WithLabelValues("200").Add(0)
	ProxyLivezTotal.WithLabelValues("200").Add(0)
	ReconcileConntrackFlowsLatency.WithLabelValues("IPv4").Observe(0.001)
	ReconcileConntrackFlowsDeletedEntriesTotal.WithLabelValues("IPv4").Add(0)
	IPTablesRestoreFailuresTotal.WithLabelValues("IPv4").Add(0)
	IPTablesPartialRestoreFailuresTotal.WithLabelValues("IPv4").Add(0)
	IPTablesRulesTotal.WithLabelValues("IPv4", "nat").Set(1)
	IPTablesRulesLastSync.WithLabelValues("IPv4", "nat").Set(1)
	NFTablesSyncFailuresTotal.WithLabelValues("IPv4").Add(0)
	NFTablesCleanupFailuresTotal.WithLabelValues("IPv4").Add(0)
}

func TestEveryKubeProxyMetricIsServedUnderItsUpstreamName(t *testing.T) {
	for _, mode := range []string{"iptables", "ipvs", "nftables"} {
		RegisterMode(mode)
	}
	touch()

	families, err := Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
	}

	rec := httptest.NewRecorder()
	Handler("iptables", nil, false).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text := rec.Body.String()

	for _, want := range expected {
		t.Run(want.name, func(t *testing.T) {
			f, ok := byName[want.name]
			if !ok {
				t.Fatalf("%s is not registered", want.name)
			}
			if f.GetType() != want.typ {
				t.Errorf("%s has type %v, want %v", want.name, f.GetType(), want.typ)
			}
			var got []string
			for _, l := range f.GetMetric()[0].GetLabel() {
				got = append(got, l.GetName())
			}
			sort.Strings(got)
			if !slices.Equal(got, want.labels) {
				t.Errorf("%s has labels %v, want %v", want.name, got, want.labels)
			}
			if !strings.Contains(text, "# TYPE "+want.name+" ") {
				t.Errorf("/metrics does not expose %s", want.name)
			}
		})
	}
}

func TestHistogramsUseKubeProxyBuckets(t *testing.T) {
	touch()
	families, err := Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	bounds := map[string][]float64{}
	for _, f := range families {
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
				bounds[f.GetName()] = append(bounds[f.GetName()], b.GetUpperBound())
			}
		}
	}
	tests := []struct {
		name        string
		count       int
		first, last float64
	}{
		{"kubeproxy_sync_proxy_rules_duration_seconds", 15, 0.001, 16.384},
		{"kubeproxy_conntrack_reconciler_sync_duration_seconds", 15, 0.001, 16.384},
		// 0, 0.25, 0.5, 1..59, 60..115, 120..300
		{"kubeproxy_network_programming_duration_seconds", 1 + 2 + 59 + 12 + 7, 0, 300},
	}
	for _, tt := range tests {
		b := bounds[tt.name]
		if len(b) != tt.count || b[0] != tt.first || b[len(b)-1] != tt.last {
			t.Errorf("%s buckets = %d from %v to %v, want %d from %v to %v",
				tt.name, len(b), first(b), last(b), tt.count, tt.first, tt.last)
		}
	}
}

func first(b []float64) float64 {
	if len(b) == 0 {
		return -1
	}
	return b[0]
}

func last(b []float64) float64 {
	if len(b) == 0 {
		return -1
	}
	return b[len(b)-1]
}

func TestMetricsServerEndpointsAnswerLikeKubeProxy(t *testing.T) {
	h := Handler("nftables", func() any { return map[string]string{"mode": "nftables"} }, false)
	tests := []struct {
		path, wantBody, wantType string
	}{
		{"/proxyMode", "nftables", "text/plain; charset=utf-8"},
		{"/healthz", "ok", "text/plain; charset=utf-8"},
		{"/configz", `{"kubeproxy.config.k8s.io":{"mode":"nftables"}}`, "application/json"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != http.StatusOK || string(body) != tt.wantBody {
			t.Errorf("GET %s = %d %q, want 200 %q", tt.path, rec.Code, body, tt.wantBody)
		}
		if ct := rec.Header().Get("Content-Type"); ct != tt.wantType {
			t.Errorf("GET %s Content-Type = %q, want %q", tt.path, ct, tt.wantType)
		}
	}
}

func TestProfilingIsServedOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		rec := httptest.NewRecorder()
		Handler("iptables", nil, enabled).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/heap?debug=1", nil))
		body, _ := io.ReadAll(rec.Body)
		switch {
		case enabled && (rec.Code != http.StatusOK || !strings.Contains(string(body), "heap profile")):
			t.Errorf("enableProfiling: GET /debug/pprof/heap = %d %.80q, want 200 and a heap profile", rec.Code, body)
		case !enabled && rec.Code != http.StatusNotFound:
			t.Errorf("without enableProfiling: GET /debug/pprof/heap = %d, want 404", rec.Code)
		}
	}
}
