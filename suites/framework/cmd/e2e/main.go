// Command e2e is what `make e2e` runs: per mode, a Ginkgo suite against a
// fresh local cluster, then run.json and the report in one run directory
// (reports/doc.go). It builds the suite once, runs modes one after the
// other (2 cores: clusters side by side would measure each other) and
// exits non-zero when any mode failed.
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

	"github.com/proxyproof/proxyproof/clusters/local"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
)

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		os.Exit(1)
	}
}

type exitError struct{ code int }

func (e *exitError) Error() string { return "exit " + strconv.Itoa(e.code) }

type options struct {
	provider, mode, proxier, nodes, keep, runDir, suite, command string
	args                                                         []string
}

func mainErr() error {
	var o options
	flag.StringVar(&o.provider, "provider", framework.ProviderLocal, "where clusters come from (local)")
	flag.StringVar(&o.mode, "mode", "iptables", "iptables, nftables, ipvs or all")
	flag.StringVar(&o.proxier, "proxier", local.ProxierOurs, "ours, kube-proxy or the path of a kube-proxy-compatible binary")
	flag.StringVar(&o.nodes, "nodes", "2", "nodes per cluster")
	flag.StringVar(&o.keep, "keep", "", "1 keeps each mode's cluster")
	flag.StringVar(&o.runDir, "run-dir", "", "run directory; default runs/<UTC time>-<mode>")
	flag.StringVar(&o.suite, "suite", "./suites/services", "the Ginkgo suite package")
	flag.StringVar(&o.command, "command", "", "the command line recorded in run.json")
	flag.Parse()
	o.args = ginkgoArgs(flag.Args())

	if o.provider == "" {
		o.provider = framework.ProviderLocal
	}
	if err := framework.CheckProvider(o.provider); err != nil {
		return err
	}
	modes, err := modesOf(o.mode)
	if err != nil {
		return err
	}
	if _, err := strconv.Atoi(o.nodes); err != nil {
		return fmt.Errorf("--nodes %q: %w", o.nodes, err)
	}
	if o.runDir == "" {
		o.runDir = filepath.Join("runs", time.Now().UTC().Format("20060102-150405")+"-"+o.mode)
	}
	if o.runDir, err = filepath.Abs(o.runDir); err != nil {
		return err
	}
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

	meta := run.Meta{
		Name:     "e2e-" + filepath.Base(o.runDir),
		Provider: o.provider,
		Kernel:   run.HostKernel(),
		Proxier:  proxierOf(o.proxier),
		Command:  o.command,
		Start:    time.Now().UTC(),
	}
	meta.Nodes, _ = strconv.Atoi(o.nodes)
	say("run directory %s; modes %s; proxier %s; %d nodes", o.runDir, strings.Join(modes, ", "), o.proxier, meta.Nodes)

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
	for _, mode := range modes {
		mm, err := runMode(o, mode, testBin, suiteDir, out, say)
		meta.Modes = append(meta.Modes, mm)
		if err != nil {
			failed = append(failed, mode)
			say("mode %s: %v", mode, err)
		}
		if env, err := readEnvironment(filepath.Join(o.runDir, mode)); err == nil && meta.KubernetesVersion == "" {
			meta.KubernetesVersion = env.KubernetesVersion
		}
	}
	if meta.Proxier.Name == local.ProxierKubeProxy {
		meta.Proxier.Version = meta.KubernetesVersion
	}
	meta.End = time.Now().UTC()
	if err := writeJSON(filepath.Join(o.runDir, run.MetaFile), meta); err != nil {
		return err
	}
	report := exec.Command("go", "run", "./reports/cmd/report", o.runDir)
	report.Stdout, report.Stderr = out, out
	reportErr := report.Run()
	say("took %s; report: %s", meta.End.Sub(meta.Start).Round(time.Second), filepath.Join(o.runDir, run.ReportFile))
	if reportErr != nil {
		return fmt.Errorf("report of %s: %w", o.runDir, reportErr)
	}
	if len(failed) > 0 {
		say("FAILED modes: %s", strings.Join(failed, ", "))
		return &exitError{1}
	}
	say("every mode passed")
	return nil
}

// modesOf expands MODE. On a kernel without ip_vs the local provider runs
// ipvs nodes in the kernel VM.
func modesOf(mode string) ([]string, error) {
	switch mode {
	case "all":
		return []string{local.ModeIPTables, local.ModeNFTables, local.ModeIPVS}, nil
	case local.ModeIPTables, local.ModeNFTables, local.ModeIPVS:
		return []string{mode}, nil
	}
	return nil, fmt.Errorf("MODE=%q: want iptables, nftables, ipvs or all", mode)
}

func runMode(o options, mode, testBin, suiteDir string, out io.Writer, say func(string, ...any)) (run.ModeMeta, error) {
	dir := filepath.Join(o.runDir, mode)
	mm := run.ModeMeta{Name: mode, Start: time.Now().UTC()}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return mm, err
	}
	args := append([]string{
		"-test.timeout", "60m",
		"-ginkgo.json-report", filepath.Join(dir, run.GinkgoFile),
		"-ginkgo.junit-report", filepath.Join(dir, "junit.xml"),
		// run.log is read as text; colour codes would litter it.
		"-ginkgo.no-color",
	}, o.args...)
	cmd := exec.Command(testBin, args...)
	cmd.Dir = suiteDir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(),
		framework.EnvProvider+"="+o.provider, framework.EnvMode+"="+mode, framework.EnvProxier+"="+o.proxier, framework.EnvNodes+"="+o.nodes,
		framework.EnvKeep+"="+o.keep, framework.EnvRunDir+"="+o.runDir)
	say("mode %s: %s", mode, strings.Join(cmd.Args, " "))
	err := cmd.Run()
	mm.End = time.Now().UTC()
	say("mode %s: done in %s (%v)", mode, mm.End.Sub(mm.Start).Round(time.Second), errOrOK(err))
	if env, eerr := readEnvironment(dir); eerr == nil {
		mm.Nodes = env.Nodes
	}
	return mm, err
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

func proxierOf(p string) run.Proxier {
	switch p {
	case local.ProxierOurs:
		v, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
		return run.Proxier{Name: "proxyproof", Version: strings.TrimSpace(string(v))}
	case local.ProxierKubeProxy:
		// Its version is the control plane's, filled in once a cluster said.
		return run.Proxier{Name: "kube-proxy"}
	}
	return run.Proxier{Name: filepath.Base(p)}
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
