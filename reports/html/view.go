package html

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/reports/run"
)

// page is everything the report template shows, computed up front so the
// template only lays it out.
type page struct {
	Title, Subtitle string
	When, Duration  string
	Generated       string
	Verdicts        []verdictView
	Env             [][2]string
	NodeModes       [][2]string
	Census          []censusView
	Modes           []string
	Groups          []groupView
	Failures        []failureView
	Figures         []figureView
	Bench           *benchView
	Upstream        *upstreamView
	Warnings        []string
	NoSpecs         bool
	// BenchOnly: the run is a bench run, with no suite to show.
	BenchOnly bool
}

// censusView is one mode census (suites/census) as a table.
type censusView struct {
	Mode, When string
	Rows       []censusRow
}

type censusRow struct {
	Cells    []string
	Problems []string
}

type verdictView struct {
	Mode, Text, Class string
	Problems          []string
}

type groupView struct {
	Feature, Summary string
	Rows             []rowView
}

type rowView struct {
	Name  string
	Cells []cellView
}

type cellView struct {
	Mode, Outcome, Mark, Reason, Link string
}

type failureView struct {
	ID, Mode, Name, Feature   string
	Location, Duration        string
	Reason, Message, FailedAt string
	Attempts                  int
	Probes                    []entry.Probe
	Timeline                  []eventView
	Dumps                     []run.RuleDump
	Output                    string
}

type eventView struct {
	At, Kind, Text string
	Failure        bool
}

type figureView struct {
	ID, Title, Name, Unit, Kind string
	Chart                       template.HTML
	Head                        []string
	Rows                        [][]string
	Raw                         [][2]string // mode, numbers: for copying
	// Note says what the chart shows instead of percentiles, and why.
	Note string
}

type benchView struct {
	Note   string
	Charts []benchChart
	Head   []string
	Rows   [][]string
	// Skipped says why a row is missing or did not finish.
	Skipped []string
}

type benchChart struct {
	Title string
	Chart template.HTML
}

func newPage(r *run.Run, now time.Time) page {
	p := page{
		Title:     "proxyproof conformance report",
		Subtitle:  r.Meta.Name,
		Generated: now.UTC().Format("2006-01-02 15:04:05 MST"),
		Warnings:  r.Warnings,
		NoSpecs:   len(r.Rows) == 0,
	}
	if p.Subtitle == "" {
		p.Subtitle = filepath.Base(r.Dir)
	}
	if s, e, ok := r.Duration(); ok {
		p.When = time.Unix(0, s).UTC().Format("2006-01-02 15:04 MST")
		p.Duration = duration(time.Duration(e - s))
	}
	for _, m := range r.Modes {
		p.Modes = append(p.Modes, m.Name)
		p.Verdicts = append(p.Verdicts, verdictView{Mode: m.Name, Text: m.Counts.Verdict(m.Name), Class: m.Counts.Class(), Problems: m.Problems})
	}
	p.Env = environment(r)
	for _, m := range r.Modes {
		if len(m.Meta.Nodes) > 0 {
			p.NodeModes = append(p.NodeModes, [2]string{m.Name, nodeModes(m.Meta.Nodes)})
		}
		p.Census = append(p.Census, censusViews(m)...)
	}
	p.Groups = groups(r)
	p.Upstream = upstream(r.Conformance)
	for _, m := range r.Modes {
		for _, s := range m.Specs {
			if s.Outcome == run.Failed {
				p.Failures = append(p.Failures, failure(s))
			}
		}
	}
	for i := range p.Verdicts {
		if len(p.Verdicts[i].Problems) > 0 {
			p.Verdicts[i].Class = "bad" // interrupted, or failed on --fail-on-pending
		}
	}
	cols := &colors{}
	for _, m := range r.Modes {
		cols.of(m.Name) // modes keep their colors in every chart
	}
	for i, f := range r.Figures {
		p.Figures = append(p.Figures, figure(i, f, cols))
	}
	if r.Bench != nil && len(r.Bench.Rows) > 0 {
		p.Bench = bench(r.Bench)
		if len(r.Modes) == 0 {
			// A bench run (make bench): no suite ran, and that is no failure.
			p.Title, p.BenchOnly = "proxyproof benchmark report", true
			p.Verdicts = []verdictView{benchVerdict(r.Bench)}
		}
	}
	return p
}

func environment(r *run.Run) [][2]string {
	m := r.Meta
	proxier := strings.TrimSpace(m.Proxier.Name + " " + m.Proxier.Version)
	nodes := ""
	if m.Nodes > 0 {
		nodes = fmt.Sprint(m.Nodes)
	}
	var out [][2]string
	for _, kv := range [][2]string{
		{"Provider", m.Provider}, {"Nodes", nodes}, {"Runner's kernel", m.Kernel},
		{"Kubernetes", m.KubernetesVersion}, {"Proxier", proxier}, {"Command", m.Command},
		{"Run directory", r.Dir},
	} {
		if kv[1] == "" {
			kv[1] = "not recorded"
		}
		out = append(out, kv)
	}
	return out
}

func censusViews(m *run.Mode) []censusView {
	var out []censusView
	for _, c := range m.Meta.Census {
		v := censusView{Mode: m.Name, When: c.When}
		for _, n := range c.Nodes {
			v.Rows = append(v.Rows, censusRow{Cells: []string{n.Name, orDash(n.Kernel), n.Expected, orDash(n.Declared), orDash(n.Carried), orDash(strings.Join(n.Leftovers, ", "))}, Problems: n.Problems})
		}
		out = append(out, v)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nodeModes(nodes map[string]string) string {
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + nodes[n]
	}
	return strings.Join(parts, ", ")
}

func groups(r *run.Run) []groupView {
	var out []groupView
	for _, row := range r.Rows {
		if len(out) == 0 || out[len(out)-1].Feature != row.Feature {
			out = append(out, groupView{Feature: row.Feature})
		}
		g := &out[len(out)-1]
		rv := rowView{Name: row.Name}
		for _, m := range r.Modes {
			s := row.Cells[m.Name]
			if s == nil {
				rv.Cells = append(rv.Cells, cellView{Mode: m.Name, Outcome: "absent", Mark: "not run"})
				continue
			}
			c := cellView{Mode: m.Name, Outcome: string(s.Outcome), Mark: mark(s.Outcome), Reason: s.Reason}
			if s.Outcome == run.Failed {
				c.Link = "#" + failureID(s)
			}
			switch s.Outcome {
			case run.Passed:
				c.Reason = duration(s.Duration)
			case run.Pending:
				c.Reason = "" // the mark says it all
			}
			rv.Cells = append(rv.Cells, c)
		}
		g.Rows = append(g.Rows, rv)
	}
	for i := range out {
		out[i].Summary = groupSummary(r, out[i].Feature)
	}
	return out
}

func groupSummary(r *run.Run, feature string) string {
	specs, failed := 0, 0
	for _, row := range r.Rows {
		if row.Feature != feature {
			continue
		}
		specs++
		for _, s := range row.Cells {
			if s.Outcome == run.Failed {
				failed++
				break
			}
		}
	}
	s := fmt.Sprintf("%d spec", specs)
	if specs != 1 {
		s += "s"
	}
	if failed > 0 {
		s += fmt.Sprintf(", %d failing in some mode", failed)
	}
	return s
}

func mark(o run.Outcome) string {
	switch o {
	case run.Passed:
		return "✓ passed"
	case run.Failed:
		return "✗ failed"
	case run.Skipped:
		return "– skipped"
	}
	return "… pending"
}

func failureID(s *run.Spec) string { return "fail-" + s.Mode + "-" + s.ID }

func failure(s *run.Spec) failureView {
	f := failureView{
		ID: failureID(s), Mode: s.Mode, Name: s.Name, Feature: s.Feature,
		Location: s.Location, Duration: duration(s.Duration), Reason: s.Reason,
		Message: s.Message, FailedAt: s.FailureLocation, Attempts: s.Attempts,
		Probes: s.ShownProbes(), Dumps: s.Dumps, Output: strings.TrimSpace(s.Output),
	}
	for i := range f.Probes {
		if f.Probes[i].Seen == "" && f.Probes[i].Expected == "" {
			f.Probes[i].Seen = s.Reason // the assertion said what it saw
		}
	}
	for _, e := range s.Timeline {
		f.Timeline = append(f.Timeline, eventView{At: "+" + duration(e.At), Kind: e.Kind, Text: e.Text, Failure: e.Failure})
	}
	return f
}

// benchVerdict counts a bench run's rows. It is bad when the first
// proxier (ours) did not finish a row, empty when nothing was measured.
func benchVerdict(b *run.Bench) verdictView {
	_, proxiers := run.GroupBench(b.Rows)
	measured, unfinished, skipped := 0, 0, 0
	v := verdictView{Mode: "bench", Class: "ok"}
	for _, r := range b.Rows {
		switch {
		case r.NotMeasured:
			skipped++
		case r.DidNotFinish:
			unfinished++
			if len(proxiers) > 0 && r.Proxier == proxiers[0] {
				v.Class = "bad"
			}
			v.Problems = append(v.Problems, fmt.Sprintf("%s %s %s did not finish: %s", r.Proxier, r.Case(), r.Scale(), r.Reason))
		default:
			measured++
		}
	}
	if measured == 0 {
		v.Class = "empty"
	}
	v.Text = fmt.Sprintf("bench: %d rows measured, %d did not finish, %d not measured", measured, unfinished, skipped)
	return v
}

// bench draws, per scale and figure, each mode's proxiers side by side,
// and the table the bench prints: each proxier's figure and the ratio of
// the first two (ours/upstream).
func bench(b *run.Bench) *benchView {
	groups, proxiers := run.GroupBench(b.Rows)
	var scales []string
	for _, g := range groups {
		if !slices.Contains(scales, g.Scale) {
			scales = append(scales, g.Scale)
		}
	}
	v := &benchView{Note: b.Note, Head: append([]string{"scale", "mode", "figure"}, proxiers...)}
	if len(proxiers) >= 2 {
		v.Head = append(v.Head, proxiers[0]+"/"+proxiers[1])
	}
	cols := &colors{}
	v.Charts = benchGrowth(b.Rows, cols)
	for _, sc := range scales {
		var cases []string
		var shown []run.BenchGroup // the scale's measured groups, one per case
		for _, g := range groups {
			if g.Scale == sc && g.Skipped() == "" {
				cases, shown = append(cases, g.Case), append(shown, g)
			}
		}
		if len(cases) == 0 {
			continue
		}
		for i, m := range run.BenchMetrics {
			bc := barChart{ID: fmt.Sprintf("bench-%s-%d", sc, i), Unit: m.Unit, Groups: cases, Series: proxiers, SeriesCols: cols}
			for _, p := range proxiers {
				vals := make([]float64, len(cases))
				marks := make([]string, len(cases))
				for c, g := range shown {
					vals[c] = math.NaN()
					r, ok := g.Rows[p]
					switch x := m.Get(r); {
					case ok && x > 0:
						vals[c] = x
					case ok && r.DidNotFinish:
						marks[c] = "did not finish"
					}
				}
				bc.Values = append(bc.Values, vals)
				bc.Marks = append(bc.Marks, marks)
			}
			v.Charts = append(v.Charts, benchChart{Title: sc + ": " + benchTitle(m), Chart: bc.svg()})
		}
	}
	for _, g := range groups {
		if skip := g.Skipped(); skip != "" {
			v.Skipped = append(v.Skipped, g.Scale+" "+g.Case+": "+skip)
			continue
		}
		for _, m := range run.BenchMetrics {
			row := []string{g.Scale, g.Case, m.Name}
			for _, p := range proxiers {
				row = append(row, g.Cell(p, m))
			}
			if len(proxiers) >= 2 {
				row = append(row, g.Ratio(proxiers[0], proxiers[1], m))
			}
			v.Rows = append(v.Rows, row)
		}
		for _, p := range proxiers {
			if r, ok := g.Rows[p]; ok && r.Reason != "" && !r.NotMeasured {
				v.Skipped = append(v.Skipped, g.Scale+" "+g.Case+" "+p+": "+r.Reason)
			}
		}
	}
	return v
}

// benchTitle names a figure with its unit: "first sync (s)".
func benchTitle(m run.BenchMetric) string {
	if m.Unit == "" {
		return m.Name
	}
	return m.Name + " (" + m.Unit + ")"
}

// growthMetrics are drawn against the Service count when a run has
// several: the curve, e.g. how a new connection's cost grows (upstream's
// iptables walks KUBE-SERVICES linearly).
var growthMetrics = []string{"connect p50", "first sync", "change p99", "rss"}

// benchGrowth draws each growth metric over the Service count, one line
// per mode and proxier; nothing when the run has one Service count.
func benchGrowth(rows []run.BenchRow, cols *colors) []benchChart {
	var counts []int
	for _, r := range rows {
		if !slices.Contains(counts, r.Services) {
			counts = append(counts, r.Services)
		}
	}
	if len(counts) < 2 {
		return nil
	}
	var out []benchChart
	for _, name := range growthMetrics {
		i := slices.IndexFunc(run.BenchMetrics, func(m run.BenchMetric) bool { return m.Name == name })
		m := run.BenchMetrics[i]
		lc := lineChart{ID: fmt.Sprintf("bench-growth-%d", i), Unit: m.Unit, XUnit: "Services", SeriesCols: cols}
		for _, r := range rows {
			v := m.Get(r)
			if v <= 0 || r.NotMeasured {
				continue
			}
			s := slices.Index(lc.Series, r.Series())
			if s < 0 {
				s = len(lc.Series)
				lc.Series = append(lc.Series, r.Series())
				lc.Points = append(lc.Points, nil)
			}
			lc.Points[s] = append(lc.Points[s], [2]float64{float64(r.Services), v})
		}
		if len(lc.Series) == 0 {
			continue
		}
		for _, pts := range lc.Points {
			slices.SortFunc(pts, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
		}
		out = append(out, benchChart{Title: benchTitle(m) + " by Service count", Chart: lc.svg()})
	}
	return out
}

// duration prints what a person reads: 850ms, 4.2s, 16m12s.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
