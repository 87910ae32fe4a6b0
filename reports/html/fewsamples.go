package html

import (
	"fmt"
	"math"
	"strings"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/reports/run"
)

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
