package healthz

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/proxyproof/proxyproof/proxier/metrics"
	"github.com/proxyproof/proxyproof/proxier/state"
)

func get(t *testing.T, h http.Handler, path string) (int, map[string]any, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: body %q is not JSON: %v", path, rec.Body.String(), err)
	}
	return rec.Code, body, rec.Header()
}

func TestProxyHealthFollowsTheSyncLoop(t *testing.T) {
	const timeout = 60 * time.Second
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	type step func(h *ProxyHealth, c *clocktesting.FakeClock)
	queued := func(h *ProxyHealth, c *clocktesting.FakeClock) { h.QueuedUpdate(c.Now()) }
	updated := func(h *ProxyHealth, c *clocktesting.FakeClock) { h.Updated(c.Now()) }
	wait := func(d time.Duration) step {
		return func(_ *ProxyHealth, c *clocktesting.FakeClock) { c.Step(d) }
	}
	deleting := func(h *ProxyHealth, _ *clocktesting.FakeClock) { h.SyncNode(state.Node{Name: "n1", Deleting: true}) }
	back := func(h *ProxyHealth, _ *clocktesting.FakeClock) { h.SyncNode(state.Node{Name: "n1"}) }

	tests := []struct {
		name             string
		steps            []step
		wantHealthz      int
		wantLivez        int
		wantNodeEligible bool
	}{
		{"a proxier that just started is healthy", nil, 200, 200, true},
		{"a proxier still in its first sync is healthy however long it takes",
			[]step{queued, wait(10 * timeout)}, 200, 200, true},
		{"a synced proxier is healthy", []step{queued, updated, wait(10 * timeout)}, 200, 200, true},
		{"an update pending for less than the timeout is fine",
			[]step{updated, queued, wait(timeout - time.Second)}, 200, 200, true},
		{"an update pending past the timeout makes both endpoints fail",
			[]step{updated, queued, wait(timeout)}, 503, 503, true},
		{"later updates do not hide the oldest pending one",
			[]step{updated, queued, wait(timeout / 2), queued, wait(timeout / 2)}, 503, 503, true},
		{"a sync after a stale period makes it healthy again",
			[]step{updated, queued, wait(2 * timeout), updated}, 200, 200, true},
		{"a node being deleted fails healthz but not livez",
			[]step{updated, deleting}, 503, 200, false},
		{"a node no longer being deleted is eligible again",
			[]step{updated, deleting, back}, 200, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clocktesting.NewFakeClock(start)
			h := NewProxyHealth("127.0.0.1:0", timeout, "", c)
			for _, s := range tt.steps {
				s(h, c)
			}
			before503 := count(metrics.ProxyHealthzTotal.WithLabelValues("503"))
			before200 := count(metrics.ProxyLivezTotal.WithLabelValues("200"))

			code, body, hdr := get(t, h.Handler(), "/healthz")
			if code != tt.wantHealthz {
				t.Errorf("/healthz = %d, want %d (body %v)", code, tt.wantHealthz, body)
			}
			if body["nodeEligible"] != tt.wantNodeEligible {
				t.Errorf("/healthz nodeEligible = %v, want %v", body["nodeEligible"], tt.wantNodeEligible)
			}
			if body["currentTime"] != c.Now().String() {
				t.Errorf("/healthz currentTime = %v, want %v", body["currentTime"], c.Now().String())
			}
			if hdr.Get("Content-Type") != "application/json" || hdr.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("/healthz headers = %v, want application/json and nosniff", hdr)
			}
			if code == 503 && count(metrics.ProxyHealthzTotal.WithLabelValues("503")) != before503+1 {
				t.Errorf("kubeproxy_proxy_healthz_total{code=503} did not count the answer")
			}

			code, body, _ = get(t, h.Handler(), "/livez")
			if code != tt.wantLivez {
				t.Errorf("/livez = %d, want %d (body %v)", code, tt.wantLivez, body)
			}
			if _, ok := body["nodeEligible"]; ok {
				t.Errorf("/livez body has nodeEligible, kube-proxy's has not: %v", body)
			}
			if code == 200 && count(metrics.ProxyLivezTotal.WithLabelValues("200")) != before200+1 {
				t.Errorf("kubeproxy_proxy_livez_total{code=200} did not count the answer")
			}
		})
	}
}

func TestHealthyAnswerReportsNowAsLastUpdated(t *testing.T) {
	c := clocktesting.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	h := NewProxyHealth("", time.Minute, "", c)
	h.Updated(c.Now())
	c.Step(time.Hour)
	_, body, _ := get(t, h.Handler(), "/healthz")
	if body["lastUpdated"] != c.Now().String() {
		t.Errorf("healthy lastUpdated = %v, want now (%v) as kube-proxy reports", body["lastUpdated"], c.Now())
	}

	h.QueuedUpdate(c.Now())
	synced := c.Now().Add(-time.Hour)
	c.Step(2 * time.Minute)
	_, body, _ = get(t, h.Handler(), "/healthz")
	if body["lastUpdated"] != synced.String() {
		t.Errorf("unhealthy lastUpdated = %v, want the last sync %v", body["lastUpdated"], synced)
	}
}

// count reads a counter (prometheus/testutil would pull a module go.mod
// does not have).
func count(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
