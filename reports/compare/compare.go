package compare

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/reports/run"
)

// DefaultThreshold is how far (percent) a figure must move to be called moved.
const DefaultThreshold = 10.0

// Options choose what to compare.
type Options struct {
	// ModeA and ModeB pair one mode of A with one of B (mode A vs mode B).
	// Empty: every mode the two runs share.
	ModeA, ModeB string
	// Threshold in percent; 0 means DefaultThreshold.
	Threshold float64
}

// Pair is a mode of run A compared with a mode of run B.
type Pair struct{ A, B string }

func (p Pair) String() string {
	if p.A == p.B {
		return p.A
	}
	return p.A + " vs " + p.B
}

// Diff is what changed from A to B.
type Diff struct {
	A, B      *run.Run
	Threshold float64
	Pairs     []Pair
	Verdicts  []Verdict
	// Flips are specs whose outcome changed, including specs only one run has.
	Flips []Flip
	// Figures are every stat both runs have, moved ones first.
	Figures []Move
	// Ratios are the bench figures as ours/upstream in each run, when both
	// runs have a bench.json.
	Ratios []Ratio
}

// Verdict is one pair's verdict line in both runs.
type Verdict struct {
	Pair Pair
	A, B string
	OK   [2]bool
}

// Flip is a spec whose outcome differs. From or To is "" when the spec is
// not in that run (added or removed).
type Flip struct {
	Pair     Pair
	Feature  string
	Name     string
	From, To run.Outcome
	// Reason is why it is not passing now (B's reason, else A's).
	Reason string
}

// Move is one stat of one figure in both runs.
type Move struct {
	Pair       Pair
	Figure     string
	Unit       string
	Stat       string
	A, B       float64
	Delta, Pct float64 // Pct is NaN when A is 0
	Moved      bool
}

// Runs compares run a with run b.
func Runs(a, b *run.Run, opt Options) (*Diff, error) {
	d := &Diff{A: a, B: b, Threshold: opt.Threshold}
	if d.Threshold <= 0 {
		d.Threshold = DefaultThreshold
	}
	pairs, err := pairModes(a, b, opt)
	if err != nil {
		return nil, err
	}
	d.Pairs = pairs
	for _, p := range pairs {
		ma, mb := a.Mode(p.A), b.Mode(p.B)
		d.Verdicts = append(d.Verdicts, Verdict{Pair: p, A: ma.Counts.Verdict(p.String()), B: mb.Counts.Verdict(p.String()), OK: [2]bool{ma.Counts.OK(), mb.Counts.OK()}})
		d.Flips = append(d.Flips, flips(p, ma, mb)...)
		d.Figures = append(d.Figures, moves(p, a, b, d.Threshold)...)
	}
	if a.Bench != nil && b.Bench != nil {
		if _, proxiers := run.GroupBench(a.Bench.Rows); len(proxiers) >= 2 {
			d.Ratios = BenchRatios(a.Bench, b.Bench, proxiers[0], proxiers[1])
		}
	}
	sort.SliceStable(d.Figures, func(i, j int) bool {
		x, y := d.Figures[i], d.Figures[j]
		if x.Moved != y.Moved {
			return x.Moved
		}
		return magnitude(x) > magnitude(y)
	})
	return d, nil
}

func magnitude(m Move) float64 {
	if math.IsNaN(m.Pct) {
		return math.Inf(1)
	}
	return math.Abs(m.Pct)
}

func pairModes(a, b *run.Run, opt Options) ([]Pair, error) {
	if opt.ModeA != "" || opt.ModeB != "" {
		p := Pair{A: opt.ModeA, B: opt.ModeB}
		if p.A == "" {
			p.A = p.B
		}
		if p.B == "" {
			p.B = p.A
		}
		if a.Mode(p.A) == nil {
			return nil, fmt.Errorf("run %s has no mode %q (it has %s)", a.Dir, p.A, modeList(a))
		}
		if b.Mode(p.B) == nil {
			return nil, fmt.Errorf("run %s has no mode %q (it has %s)", b.Dir, p.B, modeList(b))
		}
		return []Pair{p}, nil
	}
	var out []Pair
	for _, m := range a.Modes {
		if b.Mode(m.Name) != nil {
			out = append(out, Pair{A: m.Name, B: m.Name})
		}
	}
	if len(out) == 0 && len(a.Modes) == 1 && len(b.Modes) == 1 {
		out = append(out, Pair{A: a.Modes[0].Name, B: b.Modes[0].Name})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("runs %s (%s) and %s (%s) share no mode; choose a pair with --mode-a and --mode-b", a.Dir, modeList(a), b.Dir, modeList(b))
	}
	return out, nil
}

func modeList(r *run.Run) string {
	var names []string
	for _, m := range r.Modes {
		names = append(names, m.Name)
	}
	if len(names) == 0 {
		return "no modes"
	}
	return strings.Join(names, ", ")
}

func flips(p Pair, a, b *run.Mode) []Flip {
	inA := map[string]*run.Spec{}
	for _, s := range a.Specs {
		inA[s.Name] = s
	}
	var out []Flip
	for _, sb := range b.Specs {
		sa := inA[sb.Name]
		delete(inA, sb.Name)
		switch {
		case sa == nil:
			out = append(out, Flip{Pair: p, Feature: sb.Feature, Name: sb.Name, To: sb.Outcome, Reason: sb.Reason})
		case sa.Outcome != sb.Outcome:
			reason := sb.Reason
			if reason == "" {
				reason = sa.Reason
			}
			out = append(out, Flip{Pair: p, Feature: sb.Feature, Name: sb.Name, From: sa.Outcome, To: sb.Outcome, Reason: reason})
		}
	}
	for _, sa := range a.Specs {
		if _, gone := inA[sa.Name]; gone {
			out = append(out, Flip{Pair: p, Feature: sa.Feature, Name: sa.Name, From: sa.Outcome, Reason: sa.Reason})
		}
	}
	// Regressions first: a reader of an upgrade wants what broke.
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func rank(f Flip) int {
	switch {
	case f.To == run.Failed:
		return 0
	case f.From == run.Failed:
		return 1
	}
	return 2
}

func moves(p Pair, a, b *run.Run, threshold float64) []Move {
	var out []Move
	for _, fa := range a.Figures {
		ya := figureIn(fa, p.A)
		yb := figureIn(figureSet(b, fa.Name), p.B)
		if ya == nil || yb == nil || ya.Unit != yb.Unit {
			continue
		}
		sa, sb := Stats(*ya), Stats(*yb)
		for _, st := range sa {
			vb, ok := lookup(sb, st.Label)
			if !ok {
				continue
			}
			m := Move{Pair: p, Figure: fa.Name, Unit: ya.Unit, Stat: st.Label, A: st.Value, B: vb, Delta: vb - st.Value}
			if st.Value != 0 {
				m.Pct = m.Delta / math.Abs(st.Value) * 100
				m.Moved = math.Abs(m.Pct) >= threshold
			} else {
				m.Pct = math.NaN()
				m.Moved = vb != 0
			}
			out = append(out, m)
		}
	}
	return out
}

// Stats are the numbers compared for a figure: the percentiles and the
// max, or "value" for a single sample (a count, not a distribution).
func Stats(f entry.Figure) []entry.Stat {
	stats, n := f.Summary()
	if f.Kind() == entry.KindSamples && n == 1 {
		return []entry.Stat{{Label: "value", Value: f.Values[0]}}
	}
	var out []entry.Stat
	for _, s := range stats {
		if s.Label != "min" && s.Label != "mean" {
			out = append(out, s)
		}
	}
	return out
}

func lookup(stats []entry.Stat, label string) (float64, bool) {
	for _, s := range stats {
		if s.Label == label {
			return s.Value, true
		}
	}
	return 0, false
}

func figureSet(r *run.Run, name string) *run.FigureSet {
	for _, f := range r.Figures {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func figureIn(set *run.FigureSet, mode string) *entry.Figure {
	if set == nil {
		return nil
	}
	for i := range set.ByMode {
		if set.ByMode[i].Mode == mode {
			return &set.ByMode[i].Figure
		}
	}
	return nil
}

// Changed says whether anything flipped or moved.
func (d *Diff) Changed() bool {
	if len(d.Flips) > 0 {
		return true
	}
	for _, m := range d.Figures {
		if m.Moved {
			return true
		}
	}
	return false
}

// WriteText writes the diff for a terminal or a CI log.
func (d *Diff) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "compare %s -> %s\n", d.A.Dir, d.B.Dir)
	for _, v := range d.Verdicts {
		fmt.Fprintf(&b, "  %s\n    -> %s\n", v.A, v.B)
	}
	fmt.Fprintf(&b, "specs that flipped: %d\n", len(d.Flips))
	for _, f := range d.Flips {
		fmt.Fprintf(&b, "  %-10s %s: %s -> %s", f.Pair, f.Name, outcome(f.From), outcome(f.To))
		if f.Reason != "" {
			fmt.Fprintf(&b, " (%s)", f.Reason)
		}
		b.WriteByte('\n')
	}
	moved := 0
	for _, m := range d.Figures {
		if m.Moved {
			moved++
		}
	}
	fmt.Fprintf(&b, "figures that moved %.0f%% or more: %d\n", d.Threshold, moved)
	for _, m := range d.Figures {
		if m.Moved {
			fmt.Fprintf(&b, "  %-10s %s %s: %s -> %s %s (%s)\n", m.Pair, m.Figure, m.Stat, Num(m.A), Num(m.B), m.Unit, PctText(m.Pct))
		}
	}
	if len(d.Ratios) > 0 {
		fmt.Fprintf(&b, "bench ratios (ours/upstream) that moved %.0f%% or more:\n", d.Threshold)
	}
	for _, r := range d.Ratios {
		if math.IsNaN(r.Pct) || math.Abs(r.Pct) >= d.Threshold {
			fmt.Fprintf(&b, "  %s %s %s: %s -> %s\n", r.Scale, r.Case, r.Figure, r.A.Text(), r.B.Text())
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func outcome(o run.Outcome) string {
	if o == "" {
		return "absent"
	}
	return string(o)
}

// Num prints a figure value with the precision a reader needs.
func Num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e9:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// PctText is "+12.5%", or "new" when the old value was 0.
func PctText(p float64) string {
	if math.IsNaN(p) {
		return "from 0"
	}
	return fmt.Sprintf("%+.1f%%", p)
}
