package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// configzName is the key kube-proxy's configz handler files its
// configuration under.
const configzName = "kubeproxy.config.k8s.io"

// Handler serves what kube-proxy's metrics server serves: /metrics,
// /proxyMode (the mode as plain text), /configz (the effective
// configuration as JSON), /healthz ("ok") and, with profiling
// (enableProfiling), Go's /debug/pprof/. configz may be nil.
func Handler(mode string, configz func() any, profiling bool) http.Handler {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/proxyMode", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fmt.Fprint(w, mode)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// The metrics server's /healthz only says the process answers, as
		// kube-proxy's healthz.InstallHandler ping does; sync health lives
		// on healthzBindAddress.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/configz", func(w http.ResponseWriter, _ *http.Request) {
		var cfg any
		if configz != nil {
			cfg = configz()
		}
		body, err := json.Marshal(map[string]any{configzName: cfg})
		if err != nil {
			http.Error(w, fmt.Sprintf("configz: %v", err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	})
	return mux
}

// Serve registers mode's metrics and serves Handler on addr
// (metricsBindAddress) until ctx ends. The listening socket is opened in
// network namespace ns ("" = the current one). It returns an error only when
// it cannot listen or the server fails.
func Serve(ctx context.Context, addr, mode string, configz func() any, profiling bool, ns string) error {
	RegisterMode(mode)
	ln, err := netns.Listen(ns, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics server on %s: %w", addr, err)
	}
	klog.InfoS("Serving metrics", "address", ln.Addr().String(), "mode", mode, "netns", ns)
	srv := &http.Server{Handler: Handler(mode, configz, profiling), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server on %s: %w", addr, err)
	}
	return nil
}
