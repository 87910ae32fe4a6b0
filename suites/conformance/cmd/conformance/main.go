// Command conformance is what `make conformance` runs: upstream's
// [sig-network] Service proxy specs (e2e.test built from source) on a
// fresh cluster per mode, results in a run directory and the same report
// as make e2e (suites/conformance/doc.go). It checks every parameter
// before anything is built or created (exit status 2 for a bad one), runs
// the set-up (the provider's images, e2e.test and the test images), runs
// the modes one after the other and exits 1 when any spec failed or a
// mode did not run.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/conformance"
	"github.com/proxyproof/proxyproof/suites/framework"
)

const exitBadParams = 2

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := mainErr(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		var bad *framework.ParamError
		var exit exitStatus
		switch {
		case errors.As(err, &bad):
			os.Exit(exitBadParams)
		case errors.As(err, &exit):
			os.Exit(int(exit))
		}
		os.Exit(1)
	}
}

type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

type options struct {
	given   conformance.Given
	bin     string
	timeout time.Duration
	command string
	// setupOnly stops after the set-up (make conformance-deps).
	setupOnly bool
	kubectl   string
}

func parseFlags(argv []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	g := &o.given
	fs.StringVar(&g.Provider, "provider", "kind", "where clusters come from (a provider whose nodes run a real kubelet: kind)")
	fs.StringVar(&g.Mode, "mode", "all", "iptables, nftables, ipvs, mixed or all")
	fs.StringVar(&g.NodeModes, "node-modes", "", "MODE=mixed: a mode per node, e.g. iptables,nftables")
	fs.StringVar(&g.Proxier, "proxier", clusters.ProxierOurs, "ours, kube-proxy or the absolute path of a kube-proxy-compatible Linux binary")
	fs.StringVar(&g.Nodes, "nodes", "2", "nodes per cluster (at least 2)")
	fs.StringVar(&g.Keep, "keep", "", "1 keeps each mode's cluster")
	fs.StringVar(&g.RunDir, "run-dir", "", "run directory; default runs/<UTC time>-conformance-<mode>")
	fs.StringVar(&g.Name, "name", "conformance", "cluster name prefix: clusters are <name>-<mode>")
	fs.StringVar(&g.SpecList, "specs", "", "spec list file (default: the shipped suites/conformance/specs.yaml)")
	fs.IntVar(&g.Procs, "procs", 3, "specs run in parallel (ginkgo --procs); [Serial] specs run alone")
	fs.StringVar(&o.bin, "bin", "", "directory with e2e.test and ginkgo; empty: build them (hack/conformance/build.sh)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Hour, "bound on one mode's e2e.test run")
	fs.StringVar(&o.command, "command", "", "the command line recorded in run.json")
	fs.BoolVar(&o.setupOnly, "setup-only", false, "check the parameters, run the set-up, stop")
	if err := fs.Parse(argv); err != nil {
		return o, exitStatus(exitBadParams) // fs printed the flag and the usage
	}
	if fs.NArg() > 0 {
		return o, &framework.ParamError{Name: "arguments", Value: strings.Join(fs.Args(), " "), Want: "none (every parameter is a flag)"}
	}
	if g.RunDir == "" {
		g.RunDir = filepath.Join("runs", time.Now().UTC().Format("20060102-150405")+"-conformance-"+g.Mode)
	}
	abs, err := filepath.Abs(g.RunDir)
	if err != nil {
		return o, fmt.Errorf("run dir %s: %w", g.RunDir, err)
	}
	g.RunDir = abs
	return o, nil
}

func mainErr(ctx context.Context, argv []string) error {
	o, err := parseFlags(argv)
	if err != nil {
		return err
	}
	checked, err := conformance.Check(o.given)
	if err != nil {
		return err
	}
	for _, l := range checked.LeftOut {
		fmt.Printf("conformance: MODE=all on PROVIDER=%s leaves out %s: %s\n", o.given.Provider, l.Mode, l.Why)
	}
	if o.bin != "" {
		if err := conformance.CheckBuild(o.bin); err != nil {
			return err
		}
	}
	if o.bin, o.kubectl, err = setUp(checked, o.bin); err != nil {
		return err
	}
	if err := conformance.CheckBuild(o.bin); err != nil {
		return err
	}
	if o.setupOnly {
		fmt.Printf("conformance: set-up done; e2e.test and ginkgo in %s\n", o.bin)
		return nil
	}
	if err := checked.CheckCluster(o.given.Name); err != nil {
		return err
	}
	return runAll(ctx, o, checked)
}

// setUp runs the provider's set-up steps, then the conformance build
// (unless bin is given), the test images and the control plane (for its
// kubectl); it returns the binary directory and kubectl. Each step is
// idempotent and quick when done.
func setUp(c *conformance.Checked, bin string) (string, string, error) {
	var steps []string
	if n, ok := c.Provider.(clusters.SetupNeeder); ok {
		steps = n.SetupSteps(framework.SpecsOf(c.Params))
	}
	for _, s := range steps {
		if _, err := step(s); err != nil {
			return "", "", err
		}
	}
	if bin == "" {
		out, err := step("hack/conformance/build.sh")
		if err != nil {
			return "", "", err
		}
		bin = strings.TrimSpace(out)
	}
	if _, err := step("hack/conformance/images.sh", c.Specs.Images...); err != nil {
		return "", "", err
	}
	kube, err := step("hack/controlplane/build.sh")
	if err != nil {
		return "", "", err
	}
	return bin, filepath.Join(strings.TrimSpace(kube), "kubectl"), nil
}

// step runs one set-up command, its progress (stderr) streamed; it
// returns its stdout.
func step(name string, args ...string) (string, error) {
	fmt.Printf("conformance: set-up: %s\n", name)
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("set-up %s: %w", name, err)
	}
	return out.String(), nil
}

// runAll runs every mode, then writes conformance.json, run.json and the
// report.
func runAll(ctx context.Context, o options, c *conformance.Checked) error {
	runDir := o.given.RunDir
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	logf, err := os.Create(filepath.Join(runDir, run.LogFile))
	if err != nil {
		return fmt.Errorf("run log: %w", err)
	}
	defer logf.Close()
	out := io.MultiWriter(os.Stdout, logf)
	first := c.Params[0]
	meta := run.Meta{
		Name: "conformance-" + filepath.Base(runDir), Provider: first.Provider, Nodes: first.Nodes,
		Kernel: run.HostKernel(), Proxier: proxierMeta(first.Proxier), Command: o.command, Start: time.Now().UTC(),
	}
	specList := o.given.SpecList
	if specList == "" {
		specList = "suites/conformance/specs.yaml"
	}
	ro := conformance.Options{
		Provider: c.Provider, Runs: c.Params, Proxier: first.Proxier, Keep: first.Keep,
		Name: o.given.Name, RunDir: runDir, Specs: c.Specs, SpecList: specList,
		Bin: o.bin, Kubectl: o.kubectl, Procs: o.given.Procs, Timeout: o.timeout, Log: out,
	}
	var names []string
	for _, p := range c.Params {
		names = append(names, p.Mode)
	}
	fmt.Fprintf(out, "conformance: run directory %s; modes %s; proxier %s; %d nodes; %d parallel\n",
		runDir, strings.Join(names, ", "), first.Proxier, first.Nodes, ro.Procs)
	conf, modes := conformance.RunModes(ctx, ro)
	conf.LeftOut = c.LeftOut
	meta.Modes, meta.KubernetesVersion, meta.End = modes, conf.Version, time.Now().UTC()
	if meta.Proxier.Name == clusters.ProxierKubeProxy {
		meta.Proxier.Version = conf.Version
	}
	if err := run.WriteConformance(runDir, *conf); err != nil {
		return err
	}
	if err := writeMeta(runDir, meta); err != nil {
		return err
	}
	if err := report(runDir, out); err != nil {
		return err
	}
	return verdict(conf, out, meta.End.Sub(meta.Start))
}

// verdict prints the counts per mode and fails the run when a spec failed
// or a mode did not run.
func verdict(conf *run.Conformance, out io.Writer, took time.Duration) error {
	failed := false
	for _, m := range conf.Modes {
		line := fmt.Sprintf("%s (%s): %s, %s", m.Mode, conf.Proxier, m.Counts, m.End.Sub(m.Start).Round(time.Second))
		if m.Error != "" || len(m.Problems) > 0 || m.Counts.Failed > 0 || m.Counts.Passed == 0 {
			failed = true
			line += "  FAILED" + errSuffix(m.Error) + errSuffix(strings.Join(m.Problems, "; "))
		}
		fmt.Fprintln(out, "conformance: "+line)
	}
	for _, l := range conf.LeftOut {
		fmt.Fprintf(out, "conformance: %s: not run: %s\n", l.Mode, l.Why)
	}
	fmt.Fprintf(out, "conformance: took %s\n", took.Round(time.Second))
	if failed {
		return exitStatus(1)
	}
	return nil
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// report writes report.html, junit.xml and the bundle (reports/cmd/report,
// as make e2e; the bundle carries PRODUCT.yaml).
func report(runDir string, out io.Writer) error {
	cmd := exec.Command("go", "run", "./reports/cmd/report", runDir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("report of %s: %w", runDir, err)
	}
	fmt.Fprintf(out, "conformance: report: %s\n", filepath.Join(runDir, run.ReportFile))
	return nil
}

func proxierMeta(p string) run.Proxier {
	if p == clusters.ProxierOurs {
		v, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
		return run.Proxier{Name: "proxyproof", Version: strings.TrimSpace(string(v))}
	}
	return run.Proxier{Name: filepath.Base(p)}
}

func writeMeta(dir string, m run.Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	path := filepath.Join(dir, run.MetaFile)
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
