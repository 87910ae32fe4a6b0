// Command localcluster brings a local proxyproof cluster up and down
// (network-namespace nodes, real control plane; see package
// clusters/local). `up` returns once the cluster is ready and leaves it
// running; `down` removes everything it made.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/local"
)

const usage = `usage:
  localcluster up   [--name C] [--nodes N] [--mode iptables|nftables|ipvs | --node-modes m1,m2,...] [--node-kernels auto|host|vm,...] [--proxier ours|kube-proxy|PATH]
  localcluster down [--name C]
  localcluster status [--name C]
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
	case "status":
		err = status(ctx, os.Args[2:])
	case "forward": // hidden: the API forwarder daemon
		err = forward(ctx, os.Args[2:])
	case "vm": // hidden: a kernel-VM node (clusters/local/vmnode.go)
		err = vmNode(ctx, os.Args[2:])
	case "get": // hidden: an HTTP client for inside pods (no curl here)
		err = get(ctx, os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		err = fmt.Errorf("unknown command %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		os.Exit(1)
	}
}

func flags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	klogFlags := goFlagSet()
	fs.AddGoFlagSet(klogFlags)
	return fs
}

func up(ctx context.Context, args []string) error {
	fs := flags("up")
	name := fs.String("name", local.DefaultName, "cluster name (at most 10 of [a-z0-9-])")
	nodes := fs.Int("nodes", 3, "number of nodes")
	mode := fs.String("mode", local.ModeIPTables, "proxier mode of every node")
	nodeModes := fs.String("node-modes", "", "comma-separated mode per node (overrides --nodes and --mode)")
	nodeKernels := fs.String("node-kernels", "", "each node's kernel: auto, host or vm (its own, in the kernel VM), once for all or once per node")
	proxier := fs.String("proxier", local.ProxierOurs, "ours, kube-proxy (upstream) or the path of a kube-proxy-compatible binary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec := local.Spec{Name: *name, Proxier: *proxier, OutliveCaller: true}
	if *nodeModes != "" {
		for _, m := range strings.Split(*nodeModes, ",") {
			spec.Nodes = append(spec.Nodes, local.NodeSpec{Mode: strings.TrimSpace(m)})
		}
	} else {
		if *nodes < 1 {
			return fmt.Errorf("--nodes %d: want at least 1", *nodes)
		}
		for range *nodes {
			spec.Nodes = append(spec.Nodes, local.NodeSpec{Mode: *mode})
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
	c, err := local.Create(ctx, spec)
	if err != nil {
		return err
	}
	took := time.Since(began)
	fmt.Fprintf(os.Stderr, "cluster %s up in %s:\n", c.Name(), took.Round(100*time.Millisecond))
	for _, n := range c.Nodes() {
		fmt.Fprintf(os.Stderr, "  %-8s %-9s %-12s podCIDR %-15s %s\n", n.Name, n.Mode, n.IP, n.PodCIDR, where(n))
	}
	if rss, err := c.MemoryRSS(ctx); err == nil {
		fmt.Fprintf(os.Stderr, "  memory (sum of RSS): %d MiB\n", rss>>20)
	}
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig())
	return nil
}

func down(ctx context.Context, args []string) error {
	fs := flags("down")
	name := fs.String("name", local.DefaultName, "cluster name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !local.Exists(*name) {
		fmt.Fprintf(os.Stderr, "cluster %s does not exist: nothing to do\n", *name)
		return nil
	}
	// Down must finish even if interrupted once: a half-removed cluster
	// is worse than a slow Ctrl-C.
	if err := local.Destroy(context.WithoutCancel(ctx), *name); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cluster %s removed\n", *name)
	return nil
}

func status(ctx context.Context, args []string) error {
	fs := flags("status")
	name := fs.String("name", local.DefaultName, "cluster name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := local.Open(*name)
	if err != nil {
		return err
	}
	fmt.Printf("cluster %s up since %s, proxier %s\n", c.Name(), c.Created().Format(time.DateTime), c.Spec().Proxier)
	for _, n := range c.Nodes() {
		fmt.Printf("  %-8s %-9s %-12s podCIDR %-15s %s\n", n.Name, n.Mode, n.IP, n.PodCIDR, where(n))
	}
	ps, err := c.Processes(ctx)
	if err != nil {
		return err
	}
	var sum int64
	for _, p := range ps {
		fmt.Printf("  pid %-7d %-24s %6d MiB\n", p.PID, p.Name, p.RSS>>20)
		sum += p.RSS
	}
	fmt.Printf("memory (sum of RSS of %d processes): %d MiB\nexport KUBECONFIG=%s\n", len(ps), sum>>20, c.Kubeconfig())
	return nil
}

func forward(ctx context.Context, args []string) error {
	fs := flags("forward")
	ns := fs.String("netns", "", "network namespace to listen in")
	listen := fs.StringArray("listen", nil, "address to listen on, IP:PORT (repeatable)")
	target := fs.String("target", "", "address to relay to from the host namespace, IP:PORT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ns == "" || len(*listen) == 0 || *target == "" {
		return errors.New("forward: --netns, --listen and --target are required")
	}
	return local.RunForwarder(ctx, *ns, *listen, *target)
}

func vmNode(ctx context.Context, args []string) error {
	fs := flags("vm")
	opts := fs.String("options", "", "the node VM's options file (JSON), written by the cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *opts == "" {
		return errors.New("vm: --options is required")
	}
	return local.RunVM(ctx, *opts)
}

// get fetches a URL and prints the body; a non-2xx status is an error.
func get(ctx context.Context, args []string) error {
	fs := flags("get")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("get: want exactly one URL")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	os.Stdout.Write(body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", fs.Arg(0), resp.Status)
	}
	return nil
}

// where says where a node runs, for the node lines.
func where(n local.NodeStatus) string {
	if n.VM {
		return "(kernel VM)"
	}
	return "netns " + n.Namespace
}
