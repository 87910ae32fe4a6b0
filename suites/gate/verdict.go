package gate

import (
	"fmt"
	"strings"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
)

// Exit statuses CI acts on; never confused with each other.
const (
	Pass       = 0
	Regression = 1
	NotRun     = 2
)

// Verdict is a run judged against a baseline and the thresholds.
type Verdict struct {
	Status int
	// Problems say why the run could not be judged (Status NotRun).
	Problems []string
	// Specs passed in the baseline and fail now.
	Specs []compare.Flip
	// Figures are every gated figure compared, the regressed ones first.
	Figures []FigureCheck
	// Notes are worth reading but fail nothing: specs that no longer ran,
	// new specs failing, figures that could not be compared.
	Notes []string
	// SpecsCompared counts specs that passed in the baseline and ran now.
	SpecsCompared int
	Pairs         []compare.Pair
}

// FigureCheck is one gated figure: the baseline's ratio, the run's, and the
// ratio the threshold allows.
type FigureCheck struct {
	compare.Ratio
	Growth    float64
	Limit     float64 // the largest ratio that passes
	Regressed bool
	// Why says what failed when it is not the ratio (ours did not finish).
	Why string
}

// Judge compares run r with the baseline under the thresholds.
func Judge(baseline, r *run.Run, th Thresholds) Verdict {
	var v Verdict
	v.setupFailures(r)
	d, err := compare.Runs(baseline, r, compare.Options{})
	if err != nil {
		v.Problems = append(v.Problems, err.Error())
		return v.finish()
	}
	v.Pairs = d.Pairs
	for _, p := range d.Pairs {
		if p.A != p.B {
			v.Problems = append(v.Problems, fmt.Sprintf("the baseline has mode %s and this run %s: a gate compares a mode with itself (MODE=%s, or a baseline of mode %s)", p.A, p.B, p.A, p.B))
			return v.finish()
		}
	}
	v.judgeSpecs(baseline, r, d)
	v.judgeFigures(baseline, r, d, th)
	return v.finish()
}

func (v *Verdict) finish() Verdict {
	switch {
	case len(v.Problems) > 0:
		v.Status = NotRun
	case len(v.Specs) > 0:
		v.Status = Regression
	}
	for _, f := range v.Figures {
		if f.Regressed && v.Status == Pass {
			v.Status = Regression
		}
	}
	return *v
}

// setupFailures: a mode whose suite set-up failed ran nothing. When the
// proxier under test is what failed (it never answered /healthz, it
// exited) that is the proxier's regression; anything else (the control
// plane, the nodes) means the run could not be done.
func (v *Verdict) setupFailures(r *run.Run) {
	for _, m := range r.Modes {
		for _, s := range m.Specs {
			if !s.Suite || s.Outcome != run.Failed {
				continue
			}
			msg := s.Reason + "\n" + s.Message
			if proxierFailed(msg) {
				v.Specs = append(v.Specs, compare.Flip{Pair: compare.Pair{A: m.Name, B: m.Name}, Feature: s.Feature, Name: s.Name,
					From: run.Passed, To: run.Failed, Reason: "the proxier under test did not come up: " + s.Reason})
				continue
			}
			v.Problems = append(v.Problems, fmt.Sprintf("mode %s: the cluster did not come up (%s): %s", m.Name, s.Name, s.Reason))
		}
	}
}

// proxierFailed recognizes the local provider's errors about the proxier
// itself (clusters/local: "proxier (mode X) not healthy", "exited before").
func proxierFailed(msg string) bool {
	return strings.Contains(msg, "proxier (mode") || (strings.Contains(msg, "proxier") && strings.Contains(msg, "exited before"))
}

func (v *Verdict) judgeSpecs(baseline, r *run.Run, d *compare.Diff) {
	before := map[string]run.Outcome{}
	for _, p := range d.Pairs {
		for _, s := range specsOf(baseline.Mode(p.A)) {
			before[p.B+"\x00"+s.Name] = s.Outcome
		}
		for _, s := range specsOf(r.Mode(p.B)) {
			if !s.Suite && before[p.B+"\x00"+s.Name] == run.Passed && (s.Outcome == run.Passed || s.Outcome == run.Failed) {
				v.SpecsCompared++
			}
		}
	}
	notRun := 0
	for _, f := range d.Flips {
		switch {
		case f.From == run.Passed && f.To == run.Failed:
			v.Specs = append(v.Specs, f)
		case f.From == run.Passed:
			notRun++ // a label filter, or a spec renamed or removed
		case f.From == "" && f.To == run.Failed:
			v.Notes = append(v.Notes, fmt.Sprintf("%s: %q fails and is not in the baseline (not gated): %s", f.Pair, f.Name, f.Reason))
		}
	}
	if notRun > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d spec(s) that passed in the baseline did not run now (label filter, or renamed or removed)", notRun))
	}
	if v.SpecsCompared == 0 && len(v.Specs) == 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("no spec that passed in the baseline ran now (modes compared: %s): check LABEL and MODE against the baseline", pairList(d.Pairs)))
	}
	for _, m := range r.Modes {
		if !sharesMode(d.Pairs, m.Name) {
			v.Notes = append(v.Notes, fmt.Sprintf("mode %s is not in the baseline: its specs are not gated", m.Name))
		}
	}
}

func (v *Verdict) judgeFigures(baseline, r *run.Run, d *compare.Diff, th Thresholds) {
	switch {
	case baseline.Bench == nil:
		v.Problems = append(v.Problems, fmt.Sprintf("the baseline %s has no bench figures: take it from a make gate run", baseline.Dir))
		return
	case r.Bench == nil:
		v.Problems = append(v.Problems, fmt.Sprintf("run %s has no %s: the bench did not run", r.Dir, run.BenchFile))
		return
	}
	var checks []FigureCheck
	for _, ratio := range d.Ratios {
		t, gated := th.Find(ratio.Figure)
		if !gated {
			continue
		}
		c := FigureCheck{Ratio: ratio, Growth: t.For(ratio.Case)}
		switch {
		case !ratio.A.Measured():
			v.Notes = append(v.Notes, fmt.Sprintf("%s %s %s: not in the baseline (%s): not gated", ratio.Scale, ratio.Case, ratio.Figure, ratio.A.Unmeasured))
			continue
		case ratio.B.Measured():
			c.Limit = ratio.A.Ratio * (1 + c.Growth)
			c.Regressed = ratio.B.Ratio > c.Limit
		case ratio.B.DidNotFinish != "" && ratio.B.DidNotFinish == oursName(baseline):
			c.Regressed, c.Why = true, ratio.B.Unmeasured
		default:
			v.Notes = append(v.Notes, fmt.Sprintf("%s %s %s: not measured now (%s): not gated", ratio.Scale, ratio.Case, ratio.Figure, ratio.B.Unmeasured))
			continue
		}
		checks = append(checks, c)
	}
	if len(checks) == 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("no gated figure was measured in both the baseline (%s) and this run (%s): run the bench with the baseline's SCALE and modes",
			groupList(baseline.Bench), groupList(r.Bench)))
	}
	// Regressed first: the summary leads with what failed.
	for _, c := range checks {
		if c.Regressed {
			v.Figures = append(v.Figures, c)
		}
	}
	for _, c := range checks {
		if !c.Regressed {
			v.Figures = append(v.Figures, c)
		}
	}
}

// oursName is the proxier under test in the baseline's bench: its first.
func oursName(baseline *run.Run) string {
	_, proxiers := run.GroupBench(baseline.Bench.Rows)
	if len(proxiers) == 0 {
		return ""
	}
	return proxiers[0]
}

func groupList(b *run.Bench) string {
	groups, _ := run.GroupBench(b.Rows)
	var out []string
	for _, g := range groups {
		out = append(out, g.Scale+" "+g.Case)
	}
	if len(out) == 0 {
		return "no rows"
	}
	return strings.Join(out, ", ")
}

func sharesMode(pairs []compare.Pair, mode string) bool {
	for _, p := range pairs {
		if p.B == mode {
			return true
		}
	}
	return false
}

func pairList(pairs []compare.Pair) string {
	var out []string
	for _, p := range pairs {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}

// specsOf is m's specs; a mode the run lacks has none.
func specsOf(m *run.Mode) []*run.Spec {
	if m == nil {
		return nil
	}
	return m.Specs
}
