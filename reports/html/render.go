package html

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"time"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
)

var (
	//go:embed report.html.tmpl
	pageTemplate string
	//go:embed style.css
	styleSheet string

	templates = template.Must(template.New("").Funcs(template.FuncMap{
		"css":          func() template.CSS { return template.CSS(styleSheet) },
		"inc":          func(n int) int { return n + 1 },
		"outcomeClass": outcomeClass,
	}).Parse(pageTemplate))
)

// Now is the clock for the "generated at" line; tests pin it.
var Now = time.Now

// Render writes the report page of a run. The page is rendered completely
// before the first byte reaches w.
func Render(w io.Writer, r *run.Run) error {
	return execute(w, "report", newPage(r, Now()))
}

// RenderCompare writes the page of what changed between two runs.
func RenderCompare(w io.Writer, d *compare.Diff) error {
	return execute(w, "compare", newComparePage(d, Now()))
}

func execute(w io.Writer, name string, data any) error {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("rendering %s page: %w", name, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

type comparePage struct {
	A, B, ADir, BDir string
	Threshold        string
	Generated        string
	Verdicts         []compare.Verdict
	Flips            []compare.Flip
	Moved, Steady    []moveView
	// Upstream is set when both runs are make conformance runs.
	Upstream *sideBySide
}

type moveView struct {
	Pair               compare.Pair
	Figure, Stat, Unit string
	A, B, Change, Dir  string
	Moved              bool
}

func newComparePage(d *compare.Diff, now time.Time) comparePage {
	p := comparePage{
		A: label(d.A), B: label(d.B), ADir: d.A.Dir, BDir: d.B.Dir,
		Threshold: compare.Num(d.Threshold), Generated: now.UTC().Format("2006-01-02 15:04:05 MST"),
		Verdicts: d.Verdicts, Flips: d.Flips, Upstream: sideBySideOf(d.A.Conformance, d.B.Conformance),
	}
	if p.A == p.B {
		p.A, p.B = "A: "+p.A, "B: "+p.B
	}
	for _, m := range d.Figures {
		v := moveView{Pair: m.Pair, Figure: m.Figure, Stat: m.Stat, Unit: m.Unit, A: compare.Num(m.A), B: compare.Num(m.B), Moved: m.Moved}
		// Figures here are costs (latency, lost probes, memory): up is red.
		if m.Delta > 0 {
			v.Dir = "up"
			v.Change = "+" + compare.Num(m.Delta) + " (" + compare.PctText(m.Pct) + ")"
		} else if m.Delta < 0 {
			v.Dir = "down"
			v.Change = compare.Num(m.Delta) + " (" + compare.PctText(m.Pct) + ")"
		} else {
			v.Change = "no change"
		}
		if m.Moved {
			p.Moved = append(p.Moved, v)
		} else {
			p.Steady = append(p.Steady, v)
		}
	}
	return p
}

func label(r *run.Run) string {
	if r.Meta.Name != "" {
		return r.Meta.Name
	}
	return filepath.Base(r.Dir)
}
