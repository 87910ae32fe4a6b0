// Command e2e is what `make e2e` runs: per mode, a Ginkgo suite against a
// fresh local cluster, then run.json and the report in one run directory
// (reports/doc.go). It checks every parameter before anything exists
// (exit status 2 for a bad one), runs the set-up scripts, builds the suite
// once, runs modes one after the other (2 cores: clusters side by side
// would measure each other) and exits 1 when any mode failed.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/census"
	"github.com/proxyproof/proxyproof/suites/framework"
)

func main() {
	if err := mainErr(os.Args[1:], runSetup, framework.ProcessInterrupts()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(exitCode(err))
	}
}

// exitBadParams is the exit status for parameters refused before anything
// started, as for flag errors; 1 means a mode (or the run) failed.
const exitBadParams = 2

func exitCode(err error) int {
	var exit *exitError
	var bad *framework.ParamError
	switch {
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &bad):
		return exitBadParams
	}
	return 1
}

type exitError struct{ code int }

func (e *exitError) Error() string { return "exit " + strconv.Itoa(e.code) }

type options struct {
	provider, mode, nodeModes, proxier, nodes, nodeKernels, keep, runDir, suite, command string
	kubeconfig, context, backendImage, takeOver                                          string
	args                                                                                 []string
}

func parseFlags(argv []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.StringVar(&o.provider, "provider", framework.ProviderLocal, "where clusters come from (local)")
	fs.StringVar(&o.mode, "mode", "iptables", "iptables, nftables, ipvs, mixed or all")
	fs.StringVar(&o.nodeModes, "node-modes", "", "mode=mixed: a mode per node, m1,m2,... (default one node per mode the provider can run here)")
	fs.StringVar(&o.proxier, "proxier", clusters.ProxierOurs, "ours, kube-proxy or the path of a kube-proxy-compatible binary")
	fs.StringVar(&o.nodes, "nodes", "2", "nodes per cluster (at least 2)")
	fs.StringVar(&o.nodeKernels, "node-kernels", "", "each node's kernel: auto, host or vm, once for all nodes or once per node (NODE_KERNELS)")
	fs.StringVar(&o.keep, "keep", "", "1 keeps each mode's cluster")
	fs.StringVar(&o.runDir, "run-dir", "", "run directory; default runs/<UTC time>-<mode>")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "PROVIDER=kubeconfig: the kubeconfig of the cluster under test")
	fs.StringVar(&o.context, "context", "", "PROVIDER=kubeconfig: its context (default: the current one)")
	fs.StringVar(&o.backendImage, "backend-image", "", "the netserver image the cluster pulls (default "+clusters.DefaultBackendImage+")")
	fs.StringVar(&o.takeOver, "take-over", "", "PROVIDER=kubeconfig: 1 lets PROXIER=ours|kube-proxy replace the cluster's kube-proxy on the tested nodes")
	fs.StringVar(&o.suite, "suite", "./suites/services", "the Ginkgo suite package")
	fs.StringVar(&o.command, "command", "", "the command line recorded in run.json")
	argsLine := fs.String("args", "", "Ginkgo flags as one string, as make's ARGS (split as splitArgs says); added before any after --")
	if err := fs.Parse(argv); err != nil {
		return o, &exitError{exitBadParams} // fs printed the flag and the usage
	}
	args, err := splitArgs(*argsLine)
	if err != nil {
		return o, &framework.ParamError{Name: "ARGS", Value: *argsLine, Want: err.Error()}
	}
	o.args = ginkgoArgs(append(args, fs.Args()...))
	return o, nil
}

// mainErr checks every parameter, then runs set-up (the hack scripts,
// through setup), and only then creates the run directory and clusters.
func mainErr(argv []string, setup func(steps []string) error, intr *framework.Interrupts) error {
	o, err := parseFlags(argv)
	if err != nil {
		return err
	}
	params, err := checkParams(&o)
	if err != nil {
		return err
	}
	if err := setup(setupSteps(params)); err != nil {
		return err
	}
	return runModes(o, params, intr)
}

func modesOf(params []framework.Params) []string {
	var modes []string
	for _, p := range params {
		modes = append(modes, p.Mode)
	}
	return modes
}

// runModes builds the suite once, runs it per mode, then writes run.json
// and the report.
func runModes(o options, params []framework.Params, intr *framework.Interrupts) error {
	if err := os.MkdirAll(filepath.Join(o.runDir, "bin"), 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	logf, err := os.Create(filepath.Join(o.runDir, run.LogFile))
	if err != nil {
		return fmt.Errorf("run log: %w", err)
	}
	defer logf.Close()
	out := io.MultiWriter(os.Stdout, logf)
	say := func(format string, a ...any) { fmt.Fprintf(out, "e2e: "+format+"\n", a...) }

	first := params[0] // every mode shares the other parameters
	meta := run.Meta{
		Name:     "e2e-" + filepath.Base(o.runDir),
		Provider: first.Provider,
		Nodes:    first.Nodes,
		Kernel:   run.HostKernel(),
		Proxier:  proxierMeta(first.Proxier),
		Command:  o.command,
		Start:    time.Now().UTC(),
		Suite:    suiteCommit(),
	}
	nodes := fmt.Sprintf("%d nodes", meta.Nodes)
	if first.Mode == framework.ModeMixed {
		nodes = "nodes " + first.NodeModes
	}
	say("run directory %s; modes %s; proxier %s; %s", o.runDir, strings.Join(modesOf(params), ", "), first.Proxier, nodes)

	testBin := filepath.Join(o.runDir, "bin", "suite.test")
	build := exec.Command("go", "test", "-c", "-tags", "e2e", "-o", testBin, o.suite)
	build.Stdout, build.Stderr = out, out
	if err := build.Run(); err != nil {
		return fmt.Errorf("build suite %s: %w", o.suite, err)
	}
	suiteDir, err := filepath.Abs(o.suite)
	if err != nil {
		return err
	}

	var failed []string
	for _, p := range params {
		if intr.Pending() {
			say("mode %s: not started: interrupted (%v)", p.Mode, intr.Got())
			failed = append(failed, p.Mode)
			continue
		}
		mm, err := runMode(p, o.args, testBin, suiteDir, out, say, intr)
		meta.Modes = append(meta.Modes, mm)
		if err != nil {
			failed = append(failed, p.Mode)
			say("mode %s: %v", p.Mode, err)
		}
		if env, err := readEnvironment(p.ModeDir()); err == nil {
			if meta.KubernetesVersion == "" {
				meta.KubernetesVersion = env.KubernetesVersion
			}
			// The proxier the cluster runs (framework.SetupWith), where
			// it is not PROXIER's: a Terraform module's own cluster.
			if env.Proxier != "" && env.Proxier != first.Proxier {
				meta.Proxier = proxierMeta(env.Proxier)
			}
		}
	}
	if err := writeReport(o.runDir, meta, out, say); err != nil {
		return err
	}
	if len(failed) > 0 {
		say("FAILED modes: %s", strings.Join(failed, ", "))
		return &exitError{1}
	}
	say("every mode passed")
	return nil
}

// writeReport writes run.json and the report of the run directory.
func writeReport(runDir string, meta run.Meta, out io.Writer, say func(string, ...any)) error {
	if meta.Proxier.Name == clusters.ProxierKubeProxy {
		meta.Proxier.Version = meta.KubernetesVersion
	}
	meta.End = time.Now().UTC()
	if err := writeJSON(filepath.Join(runDir, run.MetaFile), meta); err != nil {
		return err
	}
	report := exec.Command("go", "run", "./reports/cmd/report", runDir)
	report.Stdout, report.Stderr = out, out
	err := report.Run()
	say("took %s; report: %s", meta.End.Sub(meta.Start).Round(time.Second), filepath.Join(runDir, run.ReportFile))
	if err != nil {
		return fmt.Errorf("report of %s: %w", runDir, err)
	}
	return nil
}

// runMode runs the suite for one mode. A mode fails when the suite does or
// when no spec ran in it (checkSomeSpecRan).
func runMode(p framework.Params, ginkgoArgs []string, testBin, suiteDir string, out io.Writer, say func(string, ...any), intr *framework.Interrupts) (run.ModeMeta, error) {
	dir := p.ModeDir()
	mm := run.ModeMeta{Name: p.Mode, Start: time.Now().UTC()}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return mm, err
	}
	report := filepath.Join(dir, run.GinkgoFile)
	args := append([]string{
		"-test.timeout", "60m",
		"-ginkgo.json-report", report,
		"-ginkgo.junit-report", filepath.Join(dir, "junit.xml"),
		// run.log is read as text; colour codes would litter it.
		"-ginkgo.no-color",
	}, ginkgoArgs...)
	cmd := exec.Command(testBin, args...)
	cmd.Dir = suiteDir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(),
		framework.EnvProvider+"="+p.Provider, framework.EnvMode+"="+p.Mode, framework.EnvNodeMode+"="+p.NodeModes, framework.EnvProxier+"="+p.Proxier,
		framework.EnvNodes+"="+strconv.Itoa(p.Nodes), framework.EnvKeep+"="+strconv.FormatBool(p.Keep), framework.EnvRunDir+"="+p.RunDir,
		framework.EnvKubeconfig+"="+p.Kubeconfig, framework.EnvContext+"="+p.Context, framework.EnvBackendImage+"="+p.BackendImage,
		framework.EnvTakeOver+"="+strconv.FormatBool(p.TakeOver), framework.EnvNodeKernels+"="+p.NodeKernels)
	say("mode %s: %s", p.Mode, strings.Join(cmd.Args, " "))
	err := intr.Run(cmd, func(sig os.Signal) {
		say("mode %s: %v: the suite is interrupting its spec and tearing its cluster down (KEEP=1 keeps it); again to stop at once", p.Mode, sig)
	})
	if err == nil {
		err = checkSomeSpecRan(report, ginkgoArgs)
	}
	mm.End = time.Now().UTC()
	if env, eerr := readEnvironment(dir); eerr == nil {
		mm.Nodes = env.Nodes
	}
	err = checkCensus(&mm, dir, err, say)
	say("mode %s: done in %s (%v)", p.Mode, mm.End.Sub(mm.Start).Round(time.Second), errOrOK(err))
	return mm, err
}

// checkCensus copies the census the suite took into mm and fails the mode
// (keeping the suite's own error first) when it found a node running
// another mode or another mode's leftovers. A suite whose cluster came up
// but left no census failed to check what it ran on: that fails too.
func checkCensus(mm *run.ModeMeta, dir string, suiteErr error, say func(string, ...any)) error {
	cs, err := census.Load(dir)
	if err != nil {
		return errors.Join(suiteErr, err) // unreadable: both matter
	}
	mm.Census = cs
	for _, c := range cs {
		say("mode %s: %s", mm.Name, strings.TrimRight(c.String(), "\n"))
	}
	if len(cs) == 0 && len(mm.Nodes) > 0 {
		return errors.Join(suiteErr, fmt.Errorf("no mode census was taken of the cluster (%s missing)", filepath.Join(dir, census.File)))
	}
	bad := mm.CensusFailures()
	switch {
	case len(bad) == 0:
		return suiteErr
	case suiteErr != nil:
		return fmt.Errorf("%w; %s", suiteErr, strings.Join(bad, "; "))
	}
	return errors.New(strings.Join(bad, "; "))
}

func errOrOK(err error) string {
	if err == nil {
		return "passed"
	}
	return err.Error()
}

// ginkgoArgs lets ARGS say --label-filter=x or --focus x as with the
// ginkgo CLI: a compiled suite wants -ginkgo.label-filter.
func ginkgoArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "-test.") && !strings.HasPrefix(a, "-ginkgo.") && !strings.HasPrefix(a, "--ginkgo.") {
			a = "-ginkgo." + strings.TrimLeft(a, "-")
		}
		out = append(out, a)
	}
	return out
}

func proxierMeta(p string) run.Proxier {
	switch p {
	case clusters.ProxierOurs:
		v, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
		return run.Proxier{Name: "proxyproof", Version: strings.TrimSpace(string(v))}
	case clusters.ProxierKubeProxy:
		// Its version is the control plane's, filled in once a cluster said.
		return run.Proxier{Name: "kube-proxy"}
	}
	return run.Proxier{Name: filepath.Base(p)}
}

// suiteCommit is the checkout that runs the suite, for run.json: the
// certification bundle names it exactly ("" outside a git checkout).
func suiteCommit() string {
	v, _ := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=40").Output()
	return strings.TrimSpace(string(v))
}

func readEnvironment(dir string) (framework.Environment, error) {
	var env framework.Environment
	b, err := os.ReadFile(filepath.Join(dir, framework.EnvironmentFile))
	if err != nil {
		return env, err
	}
	return env, json.Unmarshal(b, &env)
}

// writeJSON writes whole or not at all: the report must never read half.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
