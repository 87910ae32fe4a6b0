// Command proxier is a kube-proxy-compatible Service proxy: same config file
// (KubeProxyConfiguration v1alpha1), same flags where they overlap, same
// metrics and health endpoints, modes iptables, nftables and ipvs.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/app"
	"github.com/proxyproof/proxyproof/proxier/config"
)

// defaultGCPercent trades CPU for memory: a node daemon's memory is
// reserved on every node, its CPU is mostly idle. At 10,000 Services x 10
// (nftables, make bench) peak RSS went 256 -> 200 MB and CPU over
// the run 3.3 -> 4.1 s against Go's default of 100. GOGC overrides it.
const defaultGCPercent = 25

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "proxier: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	opts := config.NewOptions()
	fs := pflag.NewFlagSet("proxier", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := opts.Complete()
	if err != nil {
		return err
	}
	if cfg.WriteConfigTo != "" {
		return cfg.WriteFile(cfg.WriteConfigTo)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer klog.Flush()
	if cfg.Cleanup {
		return app.Cleanup(ctx, cfg)
	}
	client, err := app.Client(cfg)
	if err != nil {
		return err
	}
	return app.Run(ctx, cfg, client)
}
