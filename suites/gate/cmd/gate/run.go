package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/gate"
)

// BenchDir is where the bench's own run directory goes inside the run.
const BenchDir = "bench"

func runMain(args []string, stdout io.Writer) (int, error) {
	var o options
	fs := pflag.NewFlagSet("gate run", pflag.ContinueOnError)
	o.flags(fs)
	if err := fs.Parse(args); err != nil {
		return gate.NotRun, err
	}
	if fs.NArg() > 0 {
		return gate.NotRun, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.check(); err != nil {
		return gate.NotRun, stepSummary(o, err, "")
	}
	th, base, err := o.loadInputs()
	if err != nil {
		return gate.NotRun, stepSummary(o, err, "")
	}
	if o.runDir == "" {
		o.runDir = filepath.Join("runs", time.Now().UTC().Format("20060102-150405")+"-gate")
	}
	if o.runDir, err = filepath.Abs(o.runDir); err != nil {
		return gate.NotRun, err
	}
	began := time.Now()
	r, err := o.runAll(stdout)
	if err != nil {
		return gate.NotRun, stepSummary(o, err, o.runDir)
	}
	fmt.Fprintf(stdout, "gate: suite and bench took %s\n", time.Since(began).Round(time.Second))
	if base == nil {
		fmt.Fprintf(stdout, "gate: no baseline given: run %s not judged (make gate-baseline RUN=%s makes it one)\n", o.runDir, o.runDir)
		return gate.Pass, nil
	}
	return judge(o, base, r, th, stdout)
}

// runAll runs the suite and the bench and loads the run directory. A
// failing spec or a slow proxier is a result, not an error; an error is a
// run that could not be done.
func (o *options) runAll(stdout io.Writer) (*run.Run, error) {
	modes, _ := o.modes()
	e2eArgs := []string{"--provider", o.provider, "--mode", o.mode, "--proxier", o.proxier, "--nodes", o.nodes,
		"--run-dir", o.runDir, "--command", o.command}
	if o.label != "" {
		e2eArgs = append(e2eArgs, "--", "--label-filter="+o.label)
	}
	code, err := execute(stdout, o.e2eBin, e2eArgs...)
	switch {
	case err != nil:
		return nil, fmt.Errorf("the suite: %w", err)
	case code == 2:
		return nil, fmt.Errorf("the suite refused its parameters (e2e exit 2; its message is above)")
	case code != 0 && code != 1:
		return nil, fmt.Errorf("the suite: e2e exit status %d", code)
	}
	ours, err := o.benchProxier()
	if err != nil {
		return nil, err
	}
	benchDir := filepath.Join(o.runDir, BenchDir)
	benchArgs := append([]string{"--scale", o.scale, "--modes", benchCases(modes), "--ours", ours,
		"--changes", fmt.Sprint(o.changes), "--ipvs-changes", fmt.Sprint(max(5, o.changes/3)), "--connections", "500",
		"--out", benchDir, "--command", o.command}, strings.Fields(o.benchFlags)...)
	code, err = execute(stdout, o.benchBin, benchArgs...)
	if err != nil {
		return nil, fmt.Errorf("the bench: %w", err)
	}
	data, rerr := os.ReadFile(filepath.Join(benchDir, run.BenchFile))
	if rerr != nil {
		return nil, fmt.Errorf("the bench (exit %d) wrote no %s: %w", code, run.BenchFile, rerr)
	}
	// The run's report draws the bench beside the suite.
	if err := os.WriteFile(filepath.Join(o.runDir, run.BenchFile), data, 0o644); err != nil {
		return nil, err
	}
	if code, err = execute(stdout, "go", "run", "./reports/cmd/report", o.runDir); err != nil || code != 0 {
		return nil, fmt.Errorf("the report of %s: exit %d %v", o.runDir, code, err)
	}
	r, err := run.Load(o.runDir)
	if err != nil {
		return nil, fmt.Errorf("the run directory: %w", err)
	}
	return r, nil
}

// judge writes the summary into the run directory and CI's step summary
// and returns the verdict's status.
func judge(o options, base, r *run.Run, th gate.Thresholds, stdout io.Writer) (int, error) {
	v := gate.Judge(base, r, th)
	ctx := gate.Context{RunDir: r.Dir, Command: o.command, Baseline: o.baseline, Thresholds: o.thresholds, Artifact: o.artifact}
	var md strings.Builder
	if err := v.WriteSummary(&md, ctx); err != nil {
		return gate.NotRun, err
	}
	if err := writeFile(filepath.Join(r.Dir, gate.SummaryFile), []byte(md.String())); err != nil {
		return gate.NotRun, err
	}
	if err := appendStepSummary(md.String()); err != nil {
		return gate.NotRun, err
	}
	if err := stepOutput(v.Status); err != nil {
		return gate.NotRun, err
	}
	fmt.Fprintf(stdout, "\n%s\nsummary: %s\n", md.String(), filepath.Join(r.Dir, gate.SummaryFile))
	return v.Status, nil
}

// stepSummary puts an error that stopped the gate where CI shows the
// summary, and into runDir's summary.md when the run got that far (the
// directory is the gate's own, fresh); it returns the error.
func stepSummary(o options, err error, runDir string) error {
	md := fmt.Sprintf("## proxyproof gate: COULD NOT RUN (exit 2)\n\n`%s`\n\n%s\n", o.command, err)
	errs := []error{err, appendStepSummary(md), stepOutput(gate.NotRun)}
	if _, serr := os.Stat(runDir); runDir != "" && serr == nil {
		errs = append(errs, writeFile(filepath.Join(runDir, gate.SummaryFile), []byte(md)))
	}
	return errors.Join(errs...)
}

// appendStepSummary appends to $GITHUB_STEP_SUMMARY, as GitHub asks.
func appendStepSummary(md string) error {
	return appendEnvFile("GITHUB_STEP_SUMMARY", md+"\n")
}

// stepOutput gives later steps the status as steps.<id>.outputs.status:
// make exits 2 for any failing recipe, so a job that must tell a
// regression (1) from a run that could not be done (2) reads it there.
func stepOutput(status int) error {
	return appendEnvFile("GITHUB_OUTPUT", fmt.Sprintf("status=%d\n", status))
}

func appendEnvFile(env, text string) error {
	path := os.Getenv(env)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s %s: %w", env, path, err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, text); err != nil {
		return fmt.Errorf("%s %s: %w", env, path, err)
	}
	return nil
}

// writeFile writes whole or not at all.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// execute runs one of the runners (framework.RunProgram).
func execute(stdout io.Writer, name string, args ...string) (int, error) {
	return framework.RunProgram(stdout, "gate", name, args...)
}
