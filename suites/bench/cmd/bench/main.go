// Command bench runs our proxier and upstream kube-proxy side by side (see
// package bench) and prints the comparison table; bench.json lands in --out.
package main

import (
	"context"
	"fmt"
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
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	scale := fs.String("scale", "2000x5,10000x10", "Services x endpoints, comma separated; 200x5 is the quick path")
	modes := fs.String("modes", "iptables/nft,iptables/legacy,nftables,ipvs", "modes (iptables/BACKEND, nftables, ipvs)")
	which := fs.String("proxiers", "ours,upstream", "proxiers to run: ours, upstream")
	ours := fs.String("ours", "_output/bin/proxier", "our proxier binary (make build)")
	upstream := fs.String("upstream", "", "kube-proxy binary (default: the pinned build in the cache)")
	ipvsScale := fs.String("ipvs-scale", "500x5", "largest scale of the ipvs rows, which run in the kernel VM (TCG): each --scale is capped to it")
	out := fs.String("out", "", "run directory (default _output/bench/<time>)")
	command := fs.String("command", "bench "+strings.Join(os.Args[1:], " "), "the command line the report names (make bench passes its own)")
	spec := bench.Spec{}
	fs.IntVar(&spec.Changes, "changes", 100, "one-endpoint changes timed per row")
	fs.IntVar(&spec.IPVSChanges, "ipvs-changes", 30, "one-endpoint changes timed per ipvs row (in the VM upstream takes ~15-30 s each)")
	fs.IntVar(&spec.Connections, "connections", 2000, "new connections timed per row")
	fs.DurationVar(&spec.FirstSyncTimeout, "timeout", 300*time.Second, "per-row limit for the first complete ruleset")
	fs.DurationVar(&spec.ChangeTimeout, "change-timeout", 60*time.Second, "limit for one change or the burst to reach the kernel")
	fs.DurationVar(&spec.MinSyncPeriod, "min-sync-period", time.Second, "minSyncPeriod of both proxiers (the default on a node)")
	klogFlags := goflagSet()
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(os.Args[1:]); err != nil {
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
	for _, name := range strings.Split(*which, ",") {
		switch strings.TrimSpace(name) {
		case "ours":
			p, err := filepath.Abs(*ours)
			if err != nil {
				return err
			}
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("our proxier: %w (run make build)", err)
			}
			spec.Proxiers = append(spec.Proxiers, bench.Proxier{Name: "ours", Path: p})
		case "upstream":
			p := *upstream
			if p == "" {
				b, err := controlplane.Binaries("")
				if err != nil {
					return fmt.Errorf("upstream kube-proxy: %w (run hack/controlplane/build.sh)", err)
				}
				p = b.Proxy
			}
			spec.Proxiers = append(spec.Proxiers, bench.Proxier{Name: "upstream", Path: p})
		default:
			return fmt.Errorf("proxier %q: want ours or upstream", name)
		}
	}
	spec.Dir, spec.Command = *out, *command
	if spec.Dir == "" {
		spec.Dir = filepath.Join("_output", "bench", time.Now().Format("20060102-150405"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer klog.Flush()
	rep, err := bench.Run(ctx, spec)
	if rep != nil && len(rep.Rows) > 0 {
		fmt.Printf("\nours vs upstream kube-proxy (%s)\n\n", rep.Note)
		_ = bench.WriteTable(os.Stdout, rep.Rows, "ours", "upstream")
		for _, r := range rep.Rows {
			if r.Reason != "" && !r.NotMeasured {
				fmt.Printf("\n%s %s/%s %dx%d: %s", r.Proxier, r.Mode, r.Backend, r.Services, r.Endpoints, r.Reason)
			}
		}
		fmt.Printf("\n\nresults: %s\nreport:  %s\n", filepath.Join(spec.Dir, reportrun.BenchFile), filepath.Join(spec.Dir, reportrun.ReportFile))
	}
	return err
}
