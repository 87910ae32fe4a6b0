package gate

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
)

// SummaryFile is the summary's name in the run directory.
const SummaryFile = "summary.md"

// Context is what the summary says about the run besides the verdict.
type Context struct {
	RunDir     string
	Command    string
	Baseline   string
	Thresholds string
	// Artifact names the CI artifact holding the run directory, if any.
	Artifact string
}

// Headline is the verdict in one line.
func (v Verdict) Headline() string {
	switch v.Status {
	case NotRun:
		return "COULD NOT RUN: the gate could not judge this run (exit 2)"
	case Regression:
		n := len(v.Specs)
		for _, f := range v.Figures {
			if f.Regressed {
				n++
			}
		}
		return fmt.Sprintf("FAIL: %d regression(s) against the baseline (exit 1)", n)
	}
	return "PASS: no spec that passed in the baseline fails, no gated figure beyond its threshold (exit 0)"
}

// WriteSummary writes the Markdown a CI system shows for the run.
func (v Verdict) WriteSummary(w io.Writer, c Context) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## proxyproof gate: %s\n\n", v.Headline())
	if c.Command != "" {
		fmt.Fprintf(&b, "`%s` against baseline `%s`, thresholds `%s`.\n\n", c.Command, c.Baseline, c.Thresholds)
	}
	if len(v.Problems) > 0 {
		b.WriteString("### Why the run could not be judged\n\n")
		for _, p := range v.Problems {
			fmt.Fprintf(&b, "- %s\n", oneLine(p))
		}
		b.WriteString("\n")
	}
	v.writeSpecs(&b)
	v.writeFigures(&b)
	if len(v.Notes) > 0 {
		b.WriteString("### Notes (not failing)\n\n")
		for _, n := range v.Notes {
			fmt.Fprintf(&b, "- %s\n", oneLine(n))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "The full report (every spec, failures with probes and rule dumps, bench charts) is `%s` in the run directory `%s`",
		run.ReportFile, filepath.Base(c.RunDir))
	if c.Artifact != "" {
		fmt.Fprintf(&b, ", in the artifact %q of this job", c.Artifact)
	}
	b.WriteString("; `junit.xml` beside it feeds the test tab.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (v Verdict) writeSpecs(b *strings.Builder) {
	fmt.Fprintf(b, "### Specs: %d compared in %s, %d passed in the baseline and fail now\n\n", v.SpecsCompared, pairList(v.Pairs), len(v.Specs))
	if len(v.Specs) == 0 {
		return
	}
	b.WriteString("| mode | feature | spec | now |\n|---|---|---|---|\n")
	for _, f := range v.Specs {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", cell(f.Pair.String()), cell(f.Feature), cell(f.Name), cell("failed: "+f.Reason))
	}
	b.WriteString("\n")
}

func (v Verdict) writeFigures(b *strings.Builder) {
	regressed := 0
	for _, f := range v.Figures {
		if f.Regressed {
			regressed++
		}
	}
	fmt.Fprintf(b, "### Figures: %d compared as ours/upstream in the same run, %d beyond their threshold\n\n", len(v.Figures), regressed)
	if len(v.Figures) == 0 {
		return
	}
	b.WriteString("| | scale | case | figure | baseline ours/upstream | now ours/upstream | allowed (growth) |\n|---|---|---|---|---|---|---|\n")
	for _, f := range v.Figures {
		mark := "ok"
		if f.Regressed {
			mark = "**regressed**"
		}
		now := sideText(f.B, f.Unit)
		if f.Why != "" {
			now = f.Why
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", mark, f.Scale, cell(f.Case), f.Figure,
			sideText(f.A, f.Unit), cell(now), limitText(f))
	}
	b.WriteString("\n")
}

func sideText(s compare.RatioSide, unit string) string {
	if !s.Measured() {
		return cell(s.Unmeasured)
	}
	return fmt.Sprintf("%s (%s / %s)", RatioText(s.Ratio), withUnit(s.Ours, unit), withUnit(s.Upstream, unit))
}

func withUnit(v float64, unit string) string {
	return strings.TrimSpace(run.BenchNum(v) + " " + unit)
}

func limitText(f FigureCheck) string {
	if f.Limit == 0 {
		return fmt.Sprintf("+%.0f%%", f.Growth*100)
	}
	return fmt.Sprintf("<= %s (+%.0f%%)", RatioText(f.Limit), f.Growth*100)
}

// RatioText prints a ratio with two significant digits below 0.1 (ours can
// be 1000x faster) and two decimals above.
func RatioText(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.2g", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// cell keeps a table cell on one line and its pipes from splitting it.
func cell(s string) string {
	return strings.ReplaceAll(oneLine(s), "|", "\\|")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
