// Command bench runs our proxier and upstream kube-proxy side by side (see
// package bench) and prints the comparison table; bench.json lands in --out.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
	reportrun "github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/bench"
)

func main() {
	// In the kernel VM the same binary is the probe beside the proxier.
	if len(os.Args) > 1 && os.Args[1] == bench.ProbeCommand {
		if err := bench.ProbeMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	scale := fs.String("scale", "2000x5,10000x10", "Services x endpoints, comma separated; 200x5 is the quick path")
	modes := fs.String("modes", "iptables/nft,iptables/legacy,nftables,ipvs", "modes (iptables/BACKEND, nftables, ipvs)")
	which := fs.String("proxiers", "ours,upstream", "proxiers to run: ours, upstream")
	ours := fs.String("ours", "_output/bin/proxier", "our proxier binary (make build)")
	upstream := fs.String("upstream", "", "kube-proxy binary (default: the pinned build in the cache)")
	ipvsScale := fs.String("ipvs-scale", "500x5", "largest scale of the ipvs rows, which run in the kernel VM (TCG): each --scale is capped to it")
	out := fs.String("out", "", "run directory (default _output/bench/<time>)")
	command := fs.String("command", "bench "+strings.Join(args, " "), "the command line the report names (make bench passes its own)")
	spec := bench.Spec{}
	fs.IntVar(&spec.Changes, "changes", 100, "one-endpoint changes timed per row")
	fs.IntVar(&spec.IPVSChanges, "ipvs-changes", 30, "one-endpoint changes timed per ipvs row (in the VM upstream takes ~15-30 s each)")
	fs.IntVar(&spec.Connections, "connections", 2000, "new connections timed per row")
	fs.DurationVar(&spec.FirstSyncTimeout, "timeout", 300*time.Second, "per-row limit for the first complete ruleset")
	fs.DurationVar(&spec.ChangeTimeout, "change-timeout", 60*time.Second, "limit for one change or the burst to reach the kernel")
	fs.DurationVar(&spec.MinSyncPeriod, "min-sync-period", time.Second, "minSyncPeriod of both proxiers (the default on a node)")
	klogFlags := goflagSet()
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return nil
		}
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it creates network namespaces and runs proxiers in them")
	}
	var err error
	if spec.Scales, err = bench.ParseScales(*scale); err != nil {
		return err
	}
	if spec.Cases, err = bench.ParseCases(*modes); err != nil {
		return err
	}
	capScale, err := bench.ParseScales(*ipvsScale)
	if err != nil || len(capScale) != 1 {
		return fmt.Errorf("--ipvs-scale %q: want one SERVICESxENDPOINTS (%v)", *ipvsScale, err)
	}
	spec.IPVSMaxScale = capScale[0]
	if spec.Probe, err = os.Executable(); err != nil {
		return fmt.Errorf("the in-VM probe is this binary: %w", err)
	}
	if spec.Proxiers, err = proxiers(*which, *ours, *upstream); err != nil {
		return err
	}
	if spec.Dir, err = runDir(*out); err != nil {
		return err
	}
	spec.Command = *command
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer klog.Flush()
	rep, err := bench.Run(ctx, spec)
	if rep != nil && len(rep.Rows) > 0 {
		fmt.Fprintf(stdout, "\nours vs upstream kube-proxy (%s)\n\n", rep.Note)
		_ = bench.WriteTable(stdout, rep.Rows, "ours", "upstream")
		_ = bench.WriteReasons(stdout, rep.Rows)
		fmt.Fprintf(stdout, "\nresults: %s\nreport:  %s\n", filepath.Join(spec.Dir, reportrun.BenchFile), filepath.Join(spec.Dir, reportrun.ReportFile))
	}
	return err
}

// runDir is the run directory, absolute from here on: paths under it go
// into the proxiers' PATH (the iptables backend's links) and argv, and Go
// refuses a program found through a relative PATH entry.
func runDir(out string) (string, error) {
	if out == "" {
		out = filepath.Join("_output", "bench", time.Now().Format("20060102-150405"))
	}
	dir, err := filepath.Abs(out)
	if err != nil {
		return "", fmt.Errorf("--out %q: %w", out, err)
	}
	return dir, nil
}

// proxiers are the programs --proxiers names, each at an absolute path.
func proxiers(which, ours, upstream string) ([]bench.Proxier, error) {
	var out []bench.Proxier
	for _, name := range strings.Split(which, ",") {
		var p string
		var err error
		switch strings.TrimSpace(name) {
		case "ours":
			if p, err = filepath.Abs(ours); err != nil {
				return nil, fmt.Errorf("--ours %q: %w", ours, err)
			}
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("our proxier: %w (run make build)", err)
			}
		case "upstream":
			if upstream == "" {
				b, err := controlplane.Binaries("")
				if err != nil {
					return nil, fmt.Errorf("upstream kube-proxy: %w (run hack/controlplane/build.sh)", err)
				}
				upstream = b.Proxy
			}
			if p, err = filepath.Abs(upstream); err != nil {
				return nil, fmt.Errorf("--upstream %q: %w", upstream, err)
			}
		default:
			return nil, fmt.Errorf("--proxiers: %q is none of ours, upstream", name)
		}
		out = append(out, bench.Proxier{Name: strings.TrimSpace(name), Path: p})
	}
	return out, nil
}
