package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/clusters/local"
	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/bench"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/gate"
)

// Defaults of make gate.
const (
	DefaultBaseline   = "gate/baseline.json"
	DefaultThresholds = "gate/thresholds.yaml"
	// DefaultScale and DefaultChanges keep the bench to a few minutes: it
	// is there to catch a proxier made several times slower, which shows
	// at 200 Services as well as at 10,000.
	DefaultScale   = "200x5"
	DefaultChanges = 30
)

// options are make gate's parameters.
type options struct {
	provider, mode, label, proxier, nodes string
	baseline, thresholds, runDir          string
	scale, benchFlags, command, artifact  string
	changes                               int
	e2eBin, benchBin, ours                string
}

func (o *options) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.provider, "provider", framework.ProviderLocal, "where clusters come from (PROVIDER)")
	fs.StringVar(&o.mode, "mode", "all", "iptables, nftables, ipvs or all: the modes the suite and the bench run (MODE)")
	fs.StringVar(&o.label, "label", "", "Ginkgo label filter, e.g. feature:clusterip; empty: the full suite (LABEL)")
	fs.StringVar(&o.proxier, "proxier", local.ProxierOurs, "ours, kube-proxy or the path of a kube-proxy-compatible binary (PROXIER)")
	fs.StringVar(&o.nodes, "nodes", "2", "nodes per cluster (NODES)")
	fs.StringVar(&o.baseline, "baseline", DefaultBaseline, "a baseline file or a run directory (BASELINE); empty: run without a verdict")
	fs.StringVar(&o.thresholds, "thresholds", DefaultThresholds, "the reviewed thresholds file (THRESHOLDS)")
	fs.StringVar(&o.runDir, "run-dir", "", "run directory, which must not exist yet; default runs/<UTC time>-gate (RUN_DIR)")
	fs.StringVar(&o.scale, "scale", DefaultScale, "the bench's Services x endpoints (SCALE)")
	fs.IntVar(&o.changes, "changes", DefaultChanges, "one-endpoint changes the bench times per row (CHANGES)")
	fs.StringVar(&o.benchFlags, "bench-flags", "", "more flags for the bench, space separated (BENCH_FLAGS)")
	fs.StringVar(&o.command, "command", "", "the command line the summary names")
	fs.StringVar(&o.artifact, "artifact", os.Getenv("GATE_ARTIFACT"), "the CI artifact holding the run directory, named in the summary")
	fs.StringVar(&o.e2eBin, "e2e", "_output/bin/e2e", "the e2e runner (make builds it)")
	fs.StringVar(&o.benchBin, "bench", "_output/bin/bench", "the bench (make builds it)")
	fs.StringVar(&o.ours, "ours", "_output/bin/proxier", "our proxier, the bench's proxier under test when PROXIER=ours")
}

// check refuses bad parameters before anything is created or run.
func (o *options) check() error {
	if err := framework.CheckProvider(o.provider); err != nil {
		return err
	}
	if _, err := o.modes(); err != nil {
		return err
	}
	if o.label != "" {
		if _, err := types.ParseLabelFilter(o.label); err != nil {
			return fmt.Errorf("LABEL=%q: %w", o.label, err)
		}
	}
	if _, err := bench.ParseScales(o.scale); err != nil {
		return fmt.Errorf("SCALE=%q: %w", o.scale, err)
	}
	if o.changes < 5 {
		return fmt.Errorf("CHANGES=%d: want 5 or more (a p50 of fewer changes is one sample)", o.changes)
	}
	if _, err := o.benchProxier(); err != nil {
		return err
	}
	for _, b := range []struct{ name, path string }{{"e2e runner", o.e2eBin}, {"bench", o.benchBin}} {
		if _, err := os.Stat(b.path); err != nil {
			return fmt.Errorf("the %s %s: %w (make gate builds it)", b.name, b.path, err)
		}
	}
	if o.runDir == "" {
		return nil
	}
	if ents, err := os.ReadDir(o.runDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("RUN_DIR=%s already holds a run: the gate writes a fresh directory and overwrites none", o.runDir)
	}
	return nil
}

// modes are the suite's modes; the bench runs the matching cases.
func (o *options) modes() ([]string, error) {
	switch o.mode {
	case "all", "":
		return []string{local.ModeIPTables, local.ModeNFTables, local.ModeIPVS}, nil
	case local.ModeIPTables, local.ModeNFTables, local.ModeIPVS:
		return []string{o.mode}, nil
	}
	return nil, fmt.Errorf("MODE=%q: want iptables, nftables, ipvs or all", o.mode)
}

// benchCases are the bench's cases for the suite's modes: the local
// provider's iptables nodes use the nft backend, as Debian's iptables does.
func benchCases(modes []string) string {
	var out []string
	for _, m := range modes {
		if m == local.ModeIPTables {
			m += "/nft"
		}
		out = append(out, m)
	}
	return strings.Join(out, ",")
}

// benchProxier is the binary the bench runs as the proxier under test.
func (o *options) benchProxier() (string, error) {
	switch o.proxier {
	case local.ProxierOurs, "":
		p, err := filepath.Abs(o.ours)
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			return "", fmt.Errorf("our proxier: %w (make build)", err)
		}
		return p, nil
	case local.ProxierKubeProxy:
		b, err := controlplane.Binaries("")
		if err != nil {
			return "", fmt.Errorf("PROXIER=kube-proxy: %w (hack/controlplane/build.sh builds it)", err)
		}
		return b.Proxy, nil
	}
	p, err := filepath.Abs(o.proxier)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("PROXIER=%s: %w", o.proxier, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("PROXIER=%s: not an executable file", o.proxier)
	}
	return p, nil
}

// loadInputs reads the thresholds and the baseline before anything runs:
// a bad file must cost seconds, not a suite run.
func (o *options) loadInputs() (gate.Thresholds, *run.Run, error) {
	th, err := gate.LoadThresholds(o.thresholds)
	if err != nil {
		return th, nil, err
	}
	if o.baseline == "" {
		return th, nil, nil
	}
	base, err := gate.LoadBaseline(o.baseline)
	return th, base, err
}
