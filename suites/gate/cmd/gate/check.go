package main

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/gate"
)

// checkMain judges a run directory that exists already (a CI job's
// artifact, a run judged against a new baseline) without running anything.
func checkMain(args []string, stdout io.Writer) (int, error) {
	var o options
	var dir string
	fs := pflag.NewFlagSet("gate check", pflag.ContinueOnError)
	o.flags(fs)
	fs.StringVar(&dir, "run", "", "the run directory to judge (RUN)")
	if err := fs.Parse(args); err != nil {
		return gate.NotRun, err
	}
	if dir == "" || o.baseline == "" {
		return gate.NotRun, fmt.Errorf("gate check --run DIR --baseline FILE|DIR")
	}
	th, base, err := o.loadInputs()
	if err != nil {
		return gate.NotRun, stepSummary(o, err, "")
	}
	r, err := run.Load(dir)
	if err != nil {
		return gate.NotRun, stepSummary(o, err, "")
	}
	return judge(o, base, r, th, stdout)
}

// baselineMain writes a baseline from a run, on purpose: make gate never
// writes one by itself.
func baselineMain(args []string, stdout io.Writer) error {
	var dir, out string
	fs := pflag.NewFlagSet("gate baseline", pflag.ContinueOnError)
	fs.StringVar(&dir, "run", "", "the run directory (a make gate run: suite and bench)")
	fs.StringVar(&out, "out", DefaultBaseline, "the baseline file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if dir == "" {
		return fmt.Errorf("make gate-baseline RUN=<run directory of make gate> [BASELINE=%s]", DefaultBaseline)
	}
	r, err := run.Load(dir)
	if err != nil {
		return err
	}
	if r.Bench == nil {
		return fmt.Errorf("run %s has no %s: a baseline needs the bench's figures; take it from a make gate run", dir, run.BenchFile)
	}
	if ratios := compare.BenchRatios(r.Bench, r.Bench, "ours", "upstream"); !anyMeasured(ratios) {
		return fmt.Errorf("run %s: its bench has no figure of both ours and upstream (a row did not finish?), so the baseline would gate no figure; take it from another run", dir)
	}
	passed := 0
	for _, m := range r.Modes {
		passed += m.Counts.Passed
	}
	if passed == 0 {
		return fmt.Errorf("run %s: no spec passed, so the baseline would gate nothing", dir)
	}
	if err := gate.FromRun(r).Write(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gate: baseline %s written from %s (%d modes, %d specs passed); review and commit it\n", out, r.Dir, len(r.Modes), passed)
	return nil
}

func anyMeasured(ratios []compare.Ratio) bool {
	for _, r := range ratios {
		if r.A.Measured() {
			return true
		}
	}
	return false
}
