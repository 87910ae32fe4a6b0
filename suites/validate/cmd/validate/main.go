// Command validate is what `make validate FROM=a TO=b` runs: on ONE
// cluster, the Service suite in mode a, every node switched to b under
// load (the migration spec), the suite in mode b; then one report,
// validate.md, judged by suites/validate. It checks every parameter before
// anything exists (exit status 2), makes the cluster itself and has each
// phase's suite attach to it (CLUSTER=), so the phases see the same
// nodes. Exit status: 0 nothing regressed, 1 a regression, 2 could not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/local"
	"github.com/proxyproof/proxyproof/clusters/providers"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/validate"
)

func main() {
	status, err := mainErr(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
	}
	os.Exit(status)
}

type options struct {
	given   validate.Given
	command string
}

func parseFlags(argv []string) (options, error) {
	var o options
	g := &o.given
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.StringVar(&g.From, "from", "", "the mode the cluster runs now: iptables, nftables or ipvs")
	fs.StringVar(&g.To, "to", "", "the mode to switch every node to")
	fs.StringVar(&g.Provider, "provider", framework.ProviderLocal, "where the cluster comes from")
	fs.StringVar(&g.Proxier, "proxier", clusters.ProxierOurs, "ours, kube-proxy or the path of a kube-proxy-compatible binary")
	fs.StringVar(&g.Nodes, "nodes", "2", "nodes (at least 2)")
	fs.StringVar(&g.Keep, "keep", "", "1 keeps the cluster")
	fs.StringVar(&g.RunDir, "run-dir", "", "run directory; default runs/<UTC time>-validate-<from>-<to>")
	fs.StringVar(&g.Name, "name", "", "the cluster's name; default val<pid>")
	fs.StringVar(&g.Label, "label", "", "a Ginkgo label filter for the two suite phases")
	fs.StringVar(&o.command, "command", "", "the command line recorded in the report")
	if err := fs.Parse(argv); err != nil {
		return o, err
	}
	return o, nil
}

// mainErr returns the exit status and what went wrong.
func mainErr(argv []string) (int, error) {
	o, err := parseFlags(argv)
	if err != nil {
		return validate.NotRun, nil // flag printed it
	}
	p, err := o.given.Check(os.Getpid(), time.Now())
	if err != nil {
		return validate.NotRun, err
	}
	if err := framework.RunSetup("validate", framework.SetupSteps(p.Suite.Provider, []clusters.Spec{modeSpec(p.From), modeSpec(p.To)})); err != nil {
		return validate.NotRun, err
	}
	began := time.Now()
	// Interrupted, it stops after the phase under way and still removes
	// the cluster it made (the suites under it get the signal too).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := createCluster(ctx, p)
	if err != nil {
		return validate.NotRun, err
	}
	defer func() {
		if p.Suite.Keep {
			fmt.Printf("validate: keeping cluster %s (make cluster-down PROVIDER=%s NAME=%s)\n", c.Name(), c.Provider(), c.Name())
			return
		}
		if err := c.Destroy(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "validate: destroy cluster %s: %v\n", c.Name(), err)
		}
	}()
	phases, err := runPhases(ctx, p, o.command)
	if err != nil {
		return validate.NotRun, err
	}
	v := validate.Judge(phases)
	return v.Status, writeReport(v, phases, p, o.command, time.Since(began))
}

// createCluster makes the one cluster, outliving this process's children
// (Keep) so that each phase's suite can attach to it. On a provider whose
// nodes share the host kernel, a switch to or from a mode that kernel
// lacks needs the nodes in a kernel of their own from the start (local:
// the kernel VM).
func createCluster(ctx context.Context, p validate.Params) (clusters.Cluster, error) {
	prov, _ := providers.Get(p.Suite.Provider)
	spec := clusters.Spec{Name: p.Name, Proxier: p.Suite.Proxier, Keep: true}
	own := p.Suite.Provider == local.ProviderName && (local.RunsInVM(p.From) || local.RunsInVM(p.To))
	kernel := clusters.KernelAuto
	if own {
		kernel = clusters.KernelVM
	}
	for range p.Suite.Nodes {
		spec.Nodes = append(spec.Nodes, clusters.NodeSpec{Mode: p.From, Kernel: kernel})
	}
	what := fmt.Sprintf("cluster %s (provider %s, %d %s nodes, proxier %s)", spec.Name, prov.Name(), p.Suite.Nodes, p.From, p.Suite.Proxier)
	if err := prov.Check(spec); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	fmt.Printf("validate: creating %s; nodes in a kernel of their own: %v\n", what, own)
	c, err := prov.Create(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c, nil
}

// phase is one run of the e2e runner against the cluster.
type phase struct {
	dir, mode, label string
	env              []string
}

// runPhases builds the e2e runner once and runs the three phases in
// order; a phase that fails does not stop the next (the report says what
// each did). It returns the phases' runs, nil where none could be read.
func runPhases(ctx context.Context, p validate.Params, command string) (validate.Phases, error) {
	out := validate.Phases{From: p.From, To: p.To}
	bin := filepath.Join(p.Suite.RunDir, "bin", "e2e")
	build := exec.Command("go", "build", "-o", bin, "./suites/framework/cmd/e2e")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return out, fmt.Errorf("build the e2e runner: %w", err)
	}
	phases := []phase{
		{validate.BeforeDir, p.From, p.SuiteLabel(), nil},
		{validate.SwitchDir, p.From, "migration", []string{framework.EnvMigrateTo + "=" + p.To}},
		{validate.AfterDir, p.To, p.SuiteLabel(), nil},
	}
	runs := make([]*run.Run, len(phases))
	for i, ph := range phases {
		if ctx.Err() != nil {
			return out, fmt.Errorf("interrupted before phase %s", ph.dir)
		}
		dir := filepath.Join(p.Suite.RunDir, ph.dir)
		cmd := exec.Command(bin, "--provider", p.Suite.Provider, "--mode", ph.mode, "--proxier", p.Suite.Proxier,
			"--nodes", strconv.Itoa(p.Suite.Nodes), "--run-dir", dir, "--args", "--label-filter="+ph.label,
			"--command", fmt.Sprintf("%s (phase %s)", command, ph.dir))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(append(os.Environ(), framework.EnvCluster+"="+p.Name), ph.env...)
		began := time.Now()
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			return out, fmt.Errorf("phase %s: %w", ph.dir, err)
		}
		fmt.Printf("validate: phase %s (mode %s, label %s) took %s: %v\n", ph.dir, ph.mode, ph.label, time.Since(began).Round(time.Second), errOrOK(err))
		if r, err := run.Load(dir); err == nil {
			runs[i] = r
		} else {
			fmt.Printf("validate: phase %s left no run: %v\n", ph.dir, err)
		}
	}
	out.Before, out.Switch, out.After = runs[0], runs[1], runs[2]
	return out, nil
}

func errOrOK(err error) string {
	if err == nil {
		return "passed"
	}
	return err.Error()
}

// writeReport writes validate.md and prints it.
func writeReport(v validate.Verdict, phases validate.Phases, p validate.Params, command string, took time.Duration) error {
	path := filepath.Join(p.Suite.RunDir, validate.ReportFile)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	if err := v.WriteMarkdown(f, phases, command); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	fmt.Fprintf(f, "\nTook %s on cluster %s (%s, %d nodes, proxier %s).\n", took.Round(time.Second), p.Name, p.Suite.Provider, p.Suite.Nodes, p.Suite.Proxier)
	if err := v.WriteMarkdown(os.Stdout, phases, command); err != nil {
		return err
	}
	fmt.Printf("validate: took %s; report: %s\n", took.Round(time.Second), path)
	return nil
}

// modeSpec is a one-node cluster of mode, for set-up: the steps a cluster
// in each of FROM and TO needs.
func modeSpec(mode string) clusters.Spec {
	return clusters.Spec{Nodes: []clusters.NodeSpec{{Mode: mode}}}
}
