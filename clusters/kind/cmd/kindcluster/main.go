// Command kindcluster brings a kind cluster of the kind provider up and
// down (make cluster-up PROVIDER=kind / make cluster-down PROVIDER=kind):
// `up` returns once every node and proxier pod is Ready and leaves the
// cluster running; `down` removes everything of it, also what a killed
// suite left.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
)

const usage = `usage:
  kindcluster up   [--name C] [--nodes N] [--mode iptables|nftables | --node-modes m1,m2,...] [--node-kernels auto|host|vm,...] [--proxier ours|kube-proxy]
  kindcluster down [--name C]
The node image is KIND_NODE_IMAGE (default ` + kind.DefaultNodeImage + `).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer klog.Flush()
	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, os.Args[2:])
	case "down":
		err = down(ctx, os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		err = fmt.Errorf("unknown command %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kindcluster: %v\n", err)
		os.Exit(1)
	}
}

func flags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	gfs := flag.NewFlagSet(name, flag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)
	return fs
}

func up(ctx context.Context, args []string) error {
	fs := flags("up")
	name := fs.String("name", "proxyproof", "cluster name (1-32 of [a-z0-9-])")
	nodes := fs.Int("nodes", 2, "number of nodes (the first is the control plane; all take pods)")
	mode := fs.String("mode", clusters.ModeIPTables, "proxier mode of every node")
	nodeModes := fs.String("node-modes", "", "comma-separated mode per node (overrides --nodes and --mode)")
	proxier := fs.String("proxier", clusters.ProxierOurs, "ours, kube-proxy (upstream, built from source) or kubeadm (kind's own default: kubeadm's kube-proxy addon, a cluster as kind makes it)")
	nodeKernels := fs.String("node-kernels", "", "each node's kernel: auto, host or vm (its own, in the kernel VM), once for all or once per node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec := clusters.Spec{Name: *name, Proxier: *proxier, Keep: true}
	if *nodeModes != "" {
		for _, m := range strings.Split(*nodeModes, ",") {
			spec.Nodes = append(spec.Nodes, clusters.NodeSpec{Mode: strings.TrimSpace(m)})
		}
	} else {
		for range *nodes {
			spec.Nodes = append(spec.Nodes, clusters.NodeSpec{Mode: *mode})
		}
	}
	kernels, err := clusters.ParseNodeKernels(*nodeKernels, len(spec.Nodes))
	if err != nil {
		return fmt.Errorf("--node-kernels %q: %w", *nodeKernels, err)
	}
	for i, k := range kernels {
		spec.Nodes[i].Kernel = k
	}
	began := time.Now()
	c, err := kind.NewProvider().Create(ctx, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cluster %s up in %s (outside client %s):\n", c.Name(), time.Since(began).Round(100*time.Millisecond), c.OutsideIP())
	for _, n := range c.Nodes() {
		fmt.Fprintf(os.Stderr, "  %-28s %-9s %s\n", n.Name, n.Mode, n.IP)
	}
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig())
	return nil
}

func down(ctx context.Context, args []string) error {
	fs := flags("down")
	name := fs.String("name", "proxyproof", "cluster name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Down must finish even if interrupted once: a half-removed cluster
	// is worse than a slow Ctrl-C.
	if err := kind.NewProvider().Down(context.WithoutCancel(ctx), *name); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cluster %s removed\n", *name)
	return nil
}
