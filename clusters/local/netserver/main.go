package netserver

import (
	"context"
	"errors"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// Main is the netserver command: it parses args (without the program name),
// serves, and returns once the shutdown delay after SIGTERM/SIGINT has passed.
func Main(args []string) error {
	fs := pflag.NewFlagSet("netserver", pflag.ContinueOnError)
	var cfg Config
	fs.StringVar(&cfg.Address, "address", "", "IP to listen on (default: all)")
	fs.IntVar(&cfg.HTTPPort, "http-port", 8080, "HTTP port")
	fs.IntVar(&cfg.UDPPort, "udp-port", 8081, "UDP port (-1 disables UDP)")
	fs.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 5*time.Second, "how long /readyz answers 503 after SIGTERM before exiting")
	fs.StringVar(&cfg.Hostname, "hostname", "", "name to answer with (default $POD_NAME, else the host name)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	defer klog.Flush()
	// Listen before taking the signal over: a pod is only worth probing
	// once its ports are bound.
	s, err := Listen(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return s.Serve(ctx)
}
