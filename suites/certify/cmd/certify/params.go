package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/bundle"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// options are make certify's parameters.
type options struct {
	provider, mode, proxier, nodes, label, runDir, command string
	e2eBin, reportBin, conformanceBin                      string
	product                                                bundle.ProductInfo
	// upstream: upstream's conformance specs run too; conformance is the
	// bundle's statement about them.
	upstream    bool
	conformance string
}

// NoUpstreamOnLocal is what a bundle from the local provider says about
// upstream's specs, and what certify prints before it runs.
const NoUpstreamOnLocal = "not run: PROVIDER=local has no kubelet (nodes are network namespaces kept Ready by a node agent), " +
	"and upstream's specs need one; this bundle holds our suite only. Certify on PROVIDER=kind or kubeconfig for upstream's specs"

// Upstream is what a bundle with upstream's specs says of them.
const Upstream = "ran: upstream's [sig-network] Service proxy specs (make conformance, e2e.test built from source at the run's " +
	"Kubernetes version), in junit_01.xml and report.html beside ours; e2e.test's own logs in e2e.log"

// parse reads the flags and the PRODUCT_* variables and refuses a bad
// parameter before anything runs: a missing PRODUCT field costs seconds,
// not a suite run.
func parse(args []string, lookup func(string) (string, bool)) (options, error) {
	var o options
	fs := pflag.NewFlagSet("certify", pflag.ContinueOnError)
	fs.StringVar(&o.provider, "provider", framework.ProviderLocal, "where the cluster comes from (PROVIDER)")
	fs.StringVar(&o.mode, "mode", framework.ModeAll, "iptables, nftables, ipvs or all: every mode the provider runs here (MODE)")
	fs.StringVar(&o.proxier, "proxier", clusters.ProxierOurs, "ours, kube-proxy or the path of a kube-proxy-compatible binary (PROXIER)")
	fs.StringVar(&o.nodes, "nodes", "2", "nodes per cluster (NODES)")
	fs.StringVar(&o.label, "label", "", "Ginkgo label filter for our suite; empty: the full suite (LABEL)")
	fs.StringVar(&o.runDir, "run-dir", "", "run directory, which must not hold a run; default runs/<UTC time>-certify (RUN_DIR)")
	fs.StringVar(&o.command, "command", "make certify", "the command line run.json records")
	fs.StringVar(&o.e2eBin, "e2e", "_output/bin/e2e", "make e2e's runner (make builds it)")
	fs.StringVar(&o.reportBin, "report", "_output/bin/report", "the report command (make builds it)")
	fs.StringVar(&o.conformanceBin, "conformance", "_output/bin/conformance", "make conformance's runner (make builds it where the checkout has it)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.product, err = bundle.ProductFromEnv(lookup); err != nil {
		return o, err
	}
	if err := o.check(); err != nil {
		return o, err
	}
	if o.runDir == "" {
		o.runDir = filepath.Join("runs", time.Now().UTC().Format("20060102-150405")+"-certify")
	}
	o.runDir, err = filepath.Abs(o.runDir)
	return o, err
}

// check refuses what the runners would refuse only after a cluster came
// up, and says what the bundle will hold about upstream's specs.
func (o *options) check() error {
	if _, err := (framework.Given{Provider: o.provider, Mode: o.mode, Proxier: o.proxier, Nodes: o.nodes}).Parse(); err != nil {
		return err
	}
	if o.label != "" {
		if _, err := types.ParseLabelFilter(o.label); err != nil {
			return fmt.Errorf("LABEL=%q: %w", o.label, err)
		}
	}
	for _, b := range []struct{ name, path string }{{"e2e runner", o.e2eBin}, {"report command", o.reportBin}} {
		if _, err := os.Stat(b.path); err != nil {
			return fmt.Errorf("the %s %s: %w (make certify builds it)", b.name, b.path, err)
		}
	}
	if o.runDir != "" {
		if _, err := os.Stat(filepath.Join(o.runDir, run.MetaFile)); err == nil {
			return fmt.Errorf("RUN_DIR=%s already holds a run: certify writes a fresh directory and overwrites none", o.runDir)
		}
	}
	switch _, err := os.Stat(o.conformanceBin); {
	case o.provider == framework.ProviderLocal:
		o.conformance = NoUpstreamOnLocal
	case err != nil:
		return fmt.Errorf("PROVIDER=%s: upstream's conformance specs need make conformance's runner %s: %w "+
			"(make certify builds it where the checkout has suites/conformance); PROVIDER=local certifies with our suite only, saying so in the bundle",
			o.provider, o.conformanceBin, err)
	default:
		o.upstream = true
		o.conformance = Upstream
	}
	return nil
}
