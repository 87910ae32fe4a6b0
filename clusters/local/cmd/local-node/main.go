// Command local-node is the local provider's node agent (package
// clusters/local/agent). The lifecycle runs it inside the node's network
// namespace (`ip netns exec <C>-node-1 local-node ...`) until SIGTERM; in
// a kernel-VM node it also serves exec for the host (--exec-listen).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters/local/agent"
	"github.com/proxyproof/proxyproof/clusters/local/nodeexec"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "local-node: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := pflag.NewFlagSet("local-node", pflag.ContinueOnError)
	var cfg agent.Config
	var programs []string
	fs.StringVar(&cfg.NodeName, "node-name", "", "the Node's name, e.g. node-1")
	fs.StringVar(&cfg.NodeIP, "node-ip", "", "the node's underlay address (InternalIP), e.g. 198.18.0.11")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of identity system:node:<node-name>")
	fs.StringVar(&cfg.RoutesKubeconfig, "routes-kubeconfig", "", "kubeconfig that may list/watch all Nodes (e.g. system:kube-proxy), for routes to other nodes; default --kubeconfig")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "the node's state directory (pod logs, ipam.json)")
	fs.StringVar(&cfg.PodNetnsPrefix, "pod-netns-prefix", "", "prefix of pod network namespace names, e.g. proxyproof-p-")
	fs.StringArrayVar(&programs, "program", nil, "image=path: pods with this image (any tag) run this program (repeatable)")
	fs.StringVar(&cfg.Netns, "netns", "", "the node's network namespace, when not running inside it")
	var execListen, execToken string
	fs.StringVar(&execListen, "exec-listen", "", "serve command execution for the host on IP:PORT (nodes the host cannot enter: the kernel VM's)")
	fs.StringVar(&execToken, "exec-token-file", "", "file holding the token exec requests must carry (with --exec-listen)")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 0, "how long pods get after SIGTERM when the agent stops (default 2s)")
	gofs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gofs)
	fs.AddGoFlagSet(gofs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg.Programs = map[string]string{}
	for _, p := range programs {
		image, path, err := agent.ParseProgram(p)
		if err != nil {
			return err
		}
		cfg.Programs[image] = path
	}
	defer klog.Flush()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if execListen == "" {
		return agent.Run(ctx, cfg)
	}
	if execToken == "" {
		return errors.New("--exec-listen needs --exec-token-file")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		if err := nodeexec.Serve(ctx, execListen, execToken); err != nil {
			cancel(err)
		}
	}()
	if err := agent.Run(ctx, cfg); err != nil {
		return err
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
