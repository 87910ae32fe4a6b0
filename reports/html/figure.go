package html

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/reports/run"
)

// figure is one figure set: a chart of every mode side by side, the table
// of its stats and the raw numbers.
func figure(i int, set *run.FigureSet, cols *colors) figureView {
	v := figureView{ID: fmt.Sprintf("figure-%d-%s", i, entry.SpecID(set.Name)), Title: set.Title, Name: set.Name, Unit: set.Unit, Kind: set.Kind}
	if v.Title == "" {
		v.Title = set.Name
	}
	var series []string
	for _, mf := range set.ByMode {
		series = append(series, mf.Mode)
	}
	switch {
	case set.Kind == entry.KindSeries:
		lc := lineChart{ID: v.ID + "-chart", Unit: set.Unit, XUnit: set.XUnit, Series: series, SeriesCols: cols}
		for _, mf := range set.ByMode {
			var pts [][2]float64
			for _, p := range mf.Figure.Points {
				pts = append(pts, [2]float64{p.X, p.Y})
			}
			lc.Points = append(lc.Points, pts)
		}
		v.Chart = lc.svg()
		v.Note = fewNote(set, "values in the table")
	case allFew(set):
		v.Chart = valuesChart(v.ID+"-chart", set, series, cols).svg()
		v.Note = fewNote(set, "values shown")
	default:
		v.Chart = statsChart(v.ID+"-chart", set, series, cols).svg()
		v.Note = fewNote(set, "values in the table")
	}
	v.Head, v.Rows = figureTable(set)
	for _, mf := range set.ByMode {
		v.Raw = append(v.Raw, [2]string{mf.Mode, rawNumbers(mf.Figure)})
	}
	return v
}

// statsChart draws each mode's percentiles and max side by side; a mode
// with too few samples gets its max only, its percentile bars marked N=n.
func statsChart(id string, set *run.FigureSet, series []string, cols *colors) barChart {
	var groups []string
	stats := make([][]entry.Stat, len(set.ByMode))
	for i, mf := range set.ByMode {
		if stats[i] = compare.Stats(mf.Figure); mf.Figure.FewSamples() {
			stats[i] = withoutPercentiles(stats[i])
		}
		for _, s := range stats[i] {
			if !slices.Contains(groups, s.Label) {
				groups = append(groups, s.Label)
			}
		}
	}
	bc := barChart{ID: id, Unit: set.Unit, Groups: groups, Series: series, SeriesCols: cols}
	for i := range set.ByMode {
		row := make([]float64, len(groups))
		for g, label := range groups {
			row[g] = math.NaN()
			for _, s := range stats[i] {
				if s.Label == label {
					row[g] = s.Value
				}
			}
		}
		bc.Values = append(bc.Values, row)
	}
	bc.Marks = fewMarks(set, groups)
	return bc
}

// figureTable has one row per mode with every stat, for those who copy numbers.
func figureTable(set *run.FigureSet) ([]string, [][]string) {
	if single(set) {
		var rows [][]string
		for _, mf := range set.ByMode {
			rows = append(rows, []string{mf.Mode, compare.Num(mf.Figure.Values[0])})
		}
		return []string{"mode", "value"}, rows
	}
	var labels []string
	sums := make([][]entry.Stat, len(set.ByMode))
	counts := make([]int, len(set.ByMode))
	few := false
	for i, mf := range set.ByMode {
		if sums[i], counts[i] = mf.Figure.Summary(); mf.Figure.FewSamples() {
			sums[i], few = withoutPercentiles(sums[i]), true
		}
		for _, s := range sums[i] {
			if !slices.Contains(labels, s.Label) {
				labels = append(labels, s.Label)
			}
		}
	}
	head := append([]string{"mode", "n"}, labels...)
	var rows [][]string
	for i, mf := range set.ByMode {
		row := []string{mf.Mode, "—"} // precomputed: the suite gave no count
		if counts[i] > 0 {
			row[1] = fmt.Sprint(counts[i])
		}
		for _, label := range labels {
			cell := "—"
			for _, s := range sums[i] {
				if s.Label == label {
					cell = compare.Num(s.Value)
				}
			}
			row = append(row, cell)
		}
		if few {
			cell := "—" // enough samples: the percentiles beside are the figure
			if mf.Figure.FewSamples() {
				cell = sampleValues(mf.Figure)
			}
			row = append(row, cell)
		}
		rows = append(rows, row)
	}
	if few {
		head = append(head, "values")
	}
	return head, rows
}

// single is a figure that is one number per mode: a count, not a distribution.
func single(set *run.FigureSet) bool {
	for _, mf := range set.ByMode {
		if mf.Figure.Kind() != entry.KindSamples || len(mf.Figure.Values) != 1 {
			return false
		}
	}
	return true
}

func rawNumbers(f entry.Figure) string {
	var parts []string
	switch f.Kind() {
	case entry.KindSamples:
		for _, v := range f.Values {
			parts = append(parts, compare.Num(v))
		}
		return strings.Join(parts, " ")
	case entry.KindSeries:
		for _, p := range f.Points {
			parts = append(parts, compare.Num(p.X)+"\t"+compare.Num(p.Y))
		}
		return strings.Join(parts, "\n")
	}
	stats, _ := f.Summary()
	for _, s := range stats {
		parts = append(parts, s.Label+"="+compare.Num(s.Value))
	}
	return strings.Join(parts, " ")
}

// A figure with fewer samples than entry.MinPercentileSamples in a mode is
// shown as its values, never as p50/p90/p99 bars: percentiles of two
// values mislead.

// allFew is a figure in which no mode has enough samples for percentiles
// (and not every mode a single value, which is a count).
func allFew(set *run.FigureSet) bool {
	for _, mf := range set.ByMode {
		if !mf.Figure.FewSamples() {
			return false
		}
	}
	return len(set.ByMode) > 0
}

// fewNote says which modes have too few samples and where their values
// are: "N=2: values shown, percentiles need at least 10", or per mode
// when the counts differ. "" when every mode has enough.
func fewNote(set *run.FigureSet, where string) string {
	var who []string
	counts := map[int]bool{}
	for _, mf := range set.ByMode {
		if mf.Figure.FewSamples() {
			_, n := mf.Figure.Summary()
			counts[n] = true
			who = append(who, fmt.Sprintf("%s N=%d", mf.Mode, n))
		}
	}
	if len(who) == 0 {
		return ""
	}
	say := strings.Join(who, ", ")
	if len(who) == len(set.ByMode) && len(counts) == 1 {
		say = who[0][strings.LastIndexByte(who[0], ' ')+1:] // every mode: "N=2"
	}
	return fmt.Sprintf("%s: %s, percentiles need at least %d", say, where, entry.MinPercentileSamples)
}

// valuesChart draws every mode's samples as they were recorded, one group
// per sample (#1, #2, ...).
func valuesChart(id string, set *run.FigureSet, series []string, cols *colors) barChart {
	most := 0
	for _, mf := range set.ByMode {
		most = max(most, len(mf.Figure.Values))
	}
	bc := barChart{ID: id, Unit: set.Unit, Series: series, SeriesCols: cols}
	for i := range most {
		bc.Groups = append(bc.Groups, fmt.Sprintf("#%d", i+1))
	}
	for _, mf := range set.ByMode {
		row := make([]float64, most)
		for i := range row {
			row[i] = math.NaN()
			if i < len(mf.Figure.Values) {
				row[i] = mf.Figure.Values[i]
			}
		}
		bc.Values = append(bc.Values, row)
	}
	return bc
}

// withoutPercentiles keeps min, max and mean: true of any sample count.
func withoutPercentiles(stats []entry.Stat) []entry.Stat {
	var out []entry.Stat
	for _, s := range stats {
		if !isPercentile(s.Label) {
			out = append(out, s)
		}
	}
	return out
}

func isPercentile(label string) bool { return strings.HasPrefix(label, "p") }

// fewMarks labels the percentile bars a mode with too few samples lacks
// ("N=2"), so a missing bar is not read as a zero.
func fewMarks(set *run.FigureSet, groups []string) [][]string {
	marks := make([][]string, len(set.ByMode))
	for i, mf := range set.ByMode {
		marks[i] = make([]string, len(groups))
		if !mf.Figure.FewSamples() {
			continue
		}
		_, n := mf.Figure.Summary()
		for g, label := range groups {
			if isPercentile(label) {
				marks[i][g] = fmt.Sprintf("N=%d", n)
			}
		}
	}
	return marks
}

// sampleValues is a mode's samples as a table cell.
func sampleValues(f entry.Figure) string {
	var parts []string
	for _, v := range f.Values {
		parts = append(parts, compare.Num(v))
	}
	for _, p := range f.Points {
		parts = append(parts, compare.Num(p.Y))
	}
	return strings.Join(parts, " ")
}
