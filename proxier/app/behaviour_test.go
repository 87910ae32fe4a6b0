package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/proxier/behaviour"
	"github.com/proxyproof/proxyproof/proxier/config"
)

// testConfig is our proxier's configuration for the behaviour topology,
// through the same flags and config path as the binary, its kernel in the
// table's node namespace.
func testConfig(mode string, env *behaviour.Env, extra ...string) (*config.Config, error) {
	o := config.NewOptions()
	fs := pflag.NewFlagSet("proxier", pflag.ContinueOnError)
	o.AddFlags(fs)
	args := append([]string{
		"--proxy-mode=" + mode,
		"--hostname-override=" + behaviour.NodeName,
		"--cluster-cidr=" + behaviour.ClusterCIDR.String(),
		"--netns=" + env.Topo.Node1,
		// Health and metrics listen inside the node namespace.
		"--healthz-bind-address=0.0.0.0:10256",
		"--metrics-bind-address=0.0.0.0:10249",
		"--iptables-min-sync-period=100ms",
		"--conntrack-max-per-core=0",
	}, extra...)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o.Complete()
}

// runUntil runs the proxier with cfg until ctx ends; it returns once the
// proxier runs (preflight and config errors come within a second).
func runUntil(ctx context.Context, cfg *config.Config, env *behaviour.Env) (done <-chan error, err error) {
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg, env.Client) }()
	select {
	case err := <-errc:
		return nil, fmt.Errorf("proxier stopped at start: %w", err)
	case <-time.After(time.Second):
		return errc, nil
	}
}

// start runs our proxier for the behaviour table, and cleans the node's
// kernel when it stops so the next mode starts from nothing.
func start(mode string, extra ...string) behaviour.StartFunc {
	return func(ctx context.Context, env *behaviour.Env) error {
		cfg, err := testConfig(mode, env, extra...)
		if err != nil {
			return err
		}
		go func() {
			<-ctx.Done()
			_ = Cleanup(context.Background(), cfg)
		}()
		_, err = runUntil(ctx, cfg, env)
		return err
	}
}

func TestKernelBehaviourIPTables(t *testing.T) {
	behaviour.Run(t, start(config.ModeIPTables))
}

func TestKernelBehaviourNFTables(t *testing.T) {
	behaviour.Run(t, start(config.ModeNFTables))
}
