package app

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/conntrack"
	"github.com/proxyproof/proxyproof/proxier/daemon"
	"github.com/proxyproof/proxyproof/proxier/healthz"
	"github.com/proxyproof/proxyproof/proxier/metrics"
	"github.com/proxyproof/proxyproof/proxier/modes"
)

// Client builds the API client from clientConnection, as kube-proxy does:
// the kubeconfig file, else in-cluster config; master overrides the server.
func Client(cfg *config.Config) (kubernetes.Interface, error) {
	cc := cfg.ClientConnection
	var (
		rc  *rest.Config
		err error
	)
	if cc.Kubeconfig == "" && cc.Master == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags(cc.Master, cc.Kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("API client (kubeconfig %q, master %q): %w; set clientConnection.kubeconfig or --kubeconfig", cc.Kubeconfig, cc.Master, err)
	}
	rc.QPS, rc.Burst = cc.QPS, cc.Burst
	rc.ContentType, rc.AcceptContentTypes = cc.ContentType, cc.AcceptContentTypes
	rc.UserAgent = "proxyproof-proxier"
	return kubernetes.NewForConfig(rc)
}

// Run runs the proxier described by cfg until ctx ends. Everything that
// can be checked is checked before the first rule is written: a proxier
// never starts half-configured.
func Run(ctx context.Context, cfg *config.Config, client kubernetes.Interface) error {
	mode, err := NewMode(ctx, cfg)
	if err != nil {
		return err
	}
	family := v1.IPv4Protocol
	metrics.RegisterMode(cfg.Mode)

	for _, err := range conntrack.ApplySysctls(cfg.NetNS, conntrack.Settings{
		MaxPerCore:            int32(cfg.Conntrack.MaxPerCore),
		Min:                   int32(cfg.Conntrack.Min),
		TCPEstablishedTimeout: cfg.Conntrack.TCPEstablishedTimeout,
		TCPCloseWaitTimeout:   cfg.Conntrack.TCPCloseWaitTimeout,
		TCPBeLiberal:          cfg.Conntrack.TCPBeLiberal,
		UDPTimeout:            cfg.Conntrack.UDPTimeout,
		UDPStreamTimeout:      cfg.Conntrack.UDPStreamTimeout,
	}) {
		// Logged by ApplySysctls with the fix; the proxier works without them.
		_ = err
	}

	startConntrackUsage(ctx, cfg)

	clk := clock.RealClock{}
	var health *healthz.ProxyHealth
	if cfg.HealthzBindAddress.IsValid() {
		health = healthz.NewProxyHealth(cfg.HealthzBindAddress.String(), 2*cfg.SyncPeriod, cfg.NetNS, clk)
		go runServer(ctx, "healthz", health.Run)
	}
	if cfg.MetricsBindAddress.IsValid() {
		configz := func() any { return cfg.Raw }
		go runServer(ctx, "metrics", func(ctx context.Context) error {
			return metrics.Serve(ctx, cfg.MetricsBindAddress.String(), cfg.Mode, configz, cfg.EnableProfiling, cfg.NetNS)
		})
	}

	addrs, err := healthz.NodeAddresses(cfg.NetNS, cfg.NodePortAddresses)
	if err != nil {
		return fmt.Errorf("node addresses for health check node ports: %w", err)
	}
	svcHealth := healthz.NewServiceHealth(cfg.NodeName, cfg.NetNS, addrs, health)
	defer svcHealth.Close()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(nil, v1.EventSource{Component: "proxyproof-proxier", Host: cfg.NodeName})

	d, err := daemon.New(client, daemon.Options{
		NodeName:          cfg.NodeName,
		Family:            family,
		Mode:              mode,
		MinSyncPeriod:     cfg.MinSyncPeriod,
		SyncPeriod:        cfg.SyncPeriod,
		SyncBudgetPercent: cfg.SyncBudgetPercent,
		Hooks:             hooks(ctx, cfg, svcHealth),
		Observer:          &observer{family: string(family), health: health, clock: clk},
		Events:            events{recorder: recorder},
		Clock:             clk,
	})
	if err != nil {
		return err
	}
	klog.InfoS("Starting proxier", "mode", cfg.Mode, "node", cfg.NodeName, "netns", cfg.NetNS)
	return d.Run(ctx)
}

// hooks are the steps after each successful sync. The migration goes
// first: it is what keeps the old mode's rules in the kernel longest.
func hooks(ctx context.Context, cfg *config.Config, svcHealth *healthz.ServiceHealth) []daemon.Hook {
	var hs []daemon.Hook
	if cfg.MigrateFrom != "" {
		m := newMigration(cfg)
		m.Begin(ctx)
		hs = append(hs, m)
	}
	return append(hs, svcHealth, conntrack.NewCleaner(cfg.NetNS))
}

// runServer keeps a server's failure visible: the proxier goes on proxying
// without it, as kube-proxy does, but the log says why.
func runServer(ctx context.Context, name string, run func(context.Context) error) {
	if err := run(ctx); err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "Server stopped", "server", name)
	}
}

// Cleanup removes what every mode may have left (ours or upstream
// kube-proxy's), like `kube-proxy --cleanup`. Safe to run twice.
func Cleanup(ctx context.Context, cfg *config.Config) error {
	var errs []error
	for _, name := range []string{config.ModeIPTables, config.ModeNFTables, config.ModeIPVS} {
		errs = append(errs, cleanupMode(ctx, cfg, name, nil))
	}
	return errors.Join(errs...)
}

// cleanupMode removes what mode name (ours or upstream kube-proxy's) left,
// but the iptables chains in keep. A mode this kernel cannot run (no
// ip_vs) has nothing to remove.
func cleanupMode(ctx context.Context, cfg *config.Config, name string, keep map[string][]string) error {
	return (&oldMode{}).clean(ctx, cfg, name, keep)
}

// NewMode builds the configured mode, with its preflight checks.
func NewMode(ctx context.Context, cfg *config.Config) (modes.Mode, error) {
	return newMode(ctx, cfg, cfg.Mode, true, nil)
}
