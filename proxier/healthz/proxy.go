package healthz

import (
	"context"
	"errors"
	"fmt"
	"github.com/proxyproof/proxyproof/proxier/netns"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/proxyproof/proxyproof/proxier/metrics"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// ProxyHealth is kube-proxy's ProxyHealthServer for one IP family: healthy
// while no queued update has waited longer than healthTimeout. /healthz is
// also unhealthy while the node is being deleted (load balancers drain it);
// /livez ignores the node (the process itself is fine).
type ProxyHealth struct {
	addr          string
	netns         string
	healthTimeout time.Duration
	clock         clock.PassiveClock

	mu           sync.RWMutex
	lastUpdated  time.Time
	oldestQueued time.Time // zero: nothing pending
	nodeEligible bool
}

// NewProxyHealth serves on addr (healthzBindAddress) in network namespace
// netnsName ("" = here). healthTimeout is 2*syncPeriod in kube-proxy. clk
// may be nil (real clock); tests pass a fake one.
func NewProxyHealth(addr string, healthTimeout time.Duration, netnsName string, clk clock.PassiveClock) *ProxyHealth {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &ProxyHealth{
		addr:          addr,
		netns:         netnsName,
		healthTimeout: healthTimeout,
		clock:         clk,
		// Healthy while starting up, until a node event says otherwise.
		nodeEligible: true,
	}
}

// QueuedUpdate records that a change arrived at t and awaits a sync. Only
// the oldest pending one counts: a steady trickle of changes must not hide
// a stuck sync loop.
func (h *ProxyHealth) QueuedUpdate(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.oldestQueued.IsZero() {
		h.oldestQueued = t
	}
}

// Updated records a successful sync at t; everything queued before is done.
func (h *ProxyHealth) Updated(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.oldestQueued = time.Time{}
	h.lastUpdated = t
}

// SyncNode takes the node's state: a node being deleted is not eligible
// for load-balancer traffic.
func (h *ProxyHealth) SyncNode(node state.Node) {
	h.SetNodeEligible(!node.Deleting)
}

// SetNodeEligible sets whether the node should receive traffic; kube-proxy
// says no once the Node has a deletionTimestamp or the cluster
// autoscaler's ToBeDeletedByClusterAutoscaler taint.
func (h *ProxyHealth) SetNodeEligible(eligible bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodeEligible = eligible
}

// NodeEligible reports the last SetNodeEligible.
func (h *ProxyHealth) NodeEligible() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.nodeEligible
}

// IsHealthy is the sync health alone, ignoring the node.
func (h *ProxyHealth) IsHealthy() bool {
	healthy, _ := h.health()
	return healthy
}

func (h *ProxyHealth) health() (bool, time.Time) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.lastUpdated.IsZero() || h.oldestQueued.IsZero() {
		// Starting up (kube-proxy counts a proxier that has never synced
		// as healthy), or fully synced.
		return true, h.lastUpdated
	}
	if h.clock.Since(h.oldestQueued) < h.healthTimeout {
		return true, h.lastUpdated
	}
	return false, h.lastUpdated
}

// Handler serves /healthz and /livez.
func (h *ProxyHealth) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", h.serveHealthz)
	mux.HandleFunc("/livez", h.serveLivez)
	return mux
}

func (h *ProxyHealth) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	eligible := h.NodeEligible()
	healthy, lastUpdated := h.health()
	now := h.clock.Now()
	code := h.writeStatus(w, healthy && eligible, metrics.ProxyHealthzTotal)
	if code == http.StatusOK {
		// kube-proxy reports "now" while healthy, for compatibility with
		// releases where lastUpdated was the last loop run.
		lastUpdated = now
	}
	fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q, "nodeEligible": %v}`, lastUpdated, now, eligible)
}

func (h *ProxyHealth) serveLivez(w http.ResponseWriter, _ *http.Request) {
	healthy, lastUpdated := h.health()
	now := h.clock.Now()
	if h.writeStatus(w, healthy, metrics.ProxyLivezTotal) == http.StatusOK {
		lastUpdated = now
	}
	fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q}`, lastUpdated, now)
}

// writeStatus sets kube-proxy's headers and status and counts the answer.
func (h *ProxyHealth) writeStatus(w http.ResponseWriter, healthy bool, counter *prometheus.CounterVec) int {
	code := http.StatusOK
	if !healthy {
		code = http.StatusServiceUnavailable
	}
	counter.WithLabelValues(strconv.Itoa(code)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	return code
}

// Run serves until ctx ends. It fails only when it cannot listen or the
// server breaks.
func (h *ProxyHealth) Run(ctx context.Context) error {
	ln, err := netns.Listen(h.netns, "tcp", h.addr)
	if err != nil {
		return fmt.Errorf("proxy healthz: %w", err)
	}
	klog.InfoS("Serving proxy health", "address", ln.Addr().String(), "netns", h.netns)
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("proxy healthz on %s: %w", h.addr, err)
	}
	return nil
}
