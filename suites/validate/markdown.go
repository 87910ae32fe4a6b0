package validate

import (
	"fmt"
	"io"
	"strings"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
)

// WriteMarkdown writes the one report of a make validate: the verdict,
// what broke during the switch node by node, what changed between the
// modes (specs, figures), what passes in both; each phase's own report
// is linked for the failures' probes and rule dumps.
func (v Verdict) WriteMarkdown(w io.Writer, p Phases, command string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# make validate: %s -> %s\n\n", p.From, p.To)
	if command != "" {
		fmt.Fprintf(&b, "`%s`\n\n", command)
	}
	fmt.Fprintf(&b, "**%s**\n\n", v.headline())
	for _, pr := range v.Problems {
		fmt.Fprintf(&b, "- could not judge: %s\n", pr)
	}
	for _, r := range v.Regressions {
		fmt.Fprintf(&b, "- regression: %s\n", r)
	}
	for _, ph := range []struct {
		name string
		r    *run.Run
		mode string
	}{{"suite in " + p.From, p.Before, p.From}, {"switch", p.Switch, p.From}, {"suite in " + p.To, p.After, p.To}} {
		if ph.r != nil && ph.r.Mode(ph.mode) != nil {
			fmt.Fprintf(&b, "- %s: %s (%s)\n", ph.name, ph.r.Mode(ph.mode).Counts.Verdict(ph.mode), ph.r.Dir+"/"+run.ReportFile)
		}
	}
	if len(v.Nodes) > 0 {
		fmt.Fprintf(&b, "\n## The switch, node by node\n\n| node | restart -> serving (ms) | restart -> old mode gone (ms) | failed requests | by class |\n|---|---|---|---|---|\n")
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", n.Node, compare.Num(n.Window), compare.Num(n.Gone), compare.Num(n.Failed), n.Title)
		}
	}
	fmt.Fprintf(&b, "\n## Specs whose outcome changed from %s to %s (%d)\n\n", p.From, p.To, len(v.Flips))
	for _, f := range v.Flips {
		fmt.Fprintf(&b, "- %s: %s -> %s", f.Name, outcome(f.From), outcome(f.To))
		if f.Reason != "" {
			fmt.Fprintf(&b, " (%s)", f.Reason)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\n## Figures in both modes (moved 10%% or more first)\n\n| figure | stat | %s | %s | change |\n|---|---|---|---|---|\n", p.From, p.To)
	for _, m := range v.Moves {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s %s |\n", m.Figure, m.Stat, compare.Num(m.A), compare.Num(m.B), compare.PctText(m.Pct), m.Unit)
	}
	fmt.Fprintf(&b, "\n## Failing in both modes (%d)\n\n", len(v.FailBoth))
	for _, s := range v.FailBoth {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	fmt.Fprintf(&b, "\n## Passing in both modes (%d)\n\n", len(v.Both))
	for _, s := range v.Both {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (v Verdict) headline() string {
	switch v.Status {
	case Pass:
		return "PASS: nothing regressed"
	case Regression:
		return fmt.Sprintf("REGRESSION: %d", len(v.Regressions))
	}
	return "COULD NOT RUN"
}

func outcome(o run.Outcome) string {
	if o == "" {
		return "absent"
	}
	return string(o)
}
