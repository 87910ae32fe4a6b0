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

// start runs our proxier for the behaviour table through the same flags and
// config path as the binary, its kernel in the table's node namespace.
func start(mode string, extra ...string) behaviour.StartFunc {
	return func(ctx context.Context, env *behaviour.Env) error {
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
			return err
		}
		cfg, err := o.Complete()
		if err != nil {
			return err
		}
		errc := make(chan error, 1)
		go func() { errc <- Run(ctx, cfg, env.Client) }()
		go func() {
			<-ctx.Done()
			// Leave nothing behind in the namespace for the next mode.
			_ = Cleanup(context.Background(), cfg)
		}()
		select {
		case err := <-errc:
			return fmt.Errorf("proxier stopped at start: %w", err)
		case <-time.After(time.Second): // preflight and config errors come before this
			return nil
		}
	}
}

func TestKernelBehaviourIPTables(t *testing.T) {
	behaviour.Run(t, start(config.ModeIPTables))
}

func TestKernelBehaviourNFTables(t *testing.T) {
	behaviour.Run(t, start(config.ModeNFTables))
}
