package entry

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
)

// Figure is one measured quantity in one mode. Exactly one of Values,
// Percentiles or Points carries the data.
type Figure struct {
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	Unit  string `json:"unit"`
	Mode  string `json:"mode,omitempty"`
	// Values are raw samples; the report computes the percentiles.
	Values []float64 `json:"values,omitempty"`
	// Percentiles are precomputed: keys "min", "p50", "p99.9", "max", "mean".
	Percentiles map[string]float64 `json:"percentiles,omitempty"`
	// Points are a series, e.g. conntrack entries over seconds since start.
	Points []Point `json:"points,omitempty"`
	XUnit  string  `json:"xUnit,omitempty"`
}

// Point is one sample of a series.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Kinds of figures; they chart differently.
const (
	KindSamples     = "samples"
	KindPercentiles = "percentiles"
	KindSeries      = "series"
)

// EntryName is the report entry name to record the figure under.
func (f Figure) EntryName() string { return FigurePrefix + f.Name }

// Kind says which field carries the data ("" when none does).
func (f Figure) Kind() string {
	switch {
	case len(f.Values) > 0:
		return KindSamples
	case len(f.Percentiles) > 0:
		return KindPercentiles
	case len(f.Points) > 0:
		return KindSeries
	}
	return ""
}

var percentileKey = regexp.MustCompile(`^(min|max|mean|p[0-9]+(\.[0-9]+)?)$`)

// Validate rejects a figure the report could not draw honestly.
func (f Figure) Validate() error {
	if f.Name == "" {
		return errors.New("figure has no name")
	}
	if f.Unit == "" {
		return fmt.Errorf("figure %s: no unit", f.Name)
	}
	n := 0
	for _, has := range []bool{len(f.Values) > 0, len(f.Percentiles) > 0, len(f.Points) > 0} {
		if has {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("figure %s: want exactly one of values, percentiles, points; got %d", f.Name, n)
	}
	for i, v := range f.Values {
		if !finite(v) {
			return fmt.Errorf("figure %s: value %d is %v", f.Name, i, v)
		}
	}
	for k, v := range f.Percentiles {
		if !percentileKey.MatchString(k) {
			return fmt.Errorf("figure %s: percentile key %q: want min, max, mean or pNN", f.Name, k)
		}
		if !finite(v) {
			return fmt.Errorf("figure %s: percentile %s is %v", f.Name, k, v)
		}
	}
	for i, p := range f.Points {
		if !finite(p.X) || !finite(p.Y) {
			return fmt.Errorf("figure %s: point %d is (%v, %v)", f.Name, i, p.X, p.Y)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Stat is one labelled number of a summary ("p99" = 12.5).
type Stat struct {
	Label string
	Value float64
}

// SampleStats are the percentiles drawn for raw samples.
var SampleStats = []float64{50, 90, 99}

// MinPercentileSamples is the fewest raw samples whose percentiles the
// report shows. With fewer than 10, nearest-rank p90 and p99 are both the
// largest value seen, and p50 one of a handful: bars named p50/p90/p99
// would claim a distribution nobody measured. Below it the report shows
// the values themselves and says so ("N=2: values shown, percentiles need
// at least 10").
const MinPercentileSamples = 10

// FewSamples reports whether f has raw samples (values or points), more
// than one but fewer than MinPercentileSamples. One value is a single
// number, shown as such already.
func (f Figure) FewSamples() bool {
	_, n := f.Summary()
	return n > 1 && n < MinPercentileSamples
}

// Summary is the figure as ordered stats: min, percentiles ascending, max,
// then mean. Series summarize their Y values. Count is the sample count (0
// when the figure came precomputed).
func (f Figure) Summary() (stats []Stat, count int) {
	switch f.Kind() {
	case KindSamples:
		return summarize(f.Values), len(f.Values)
	case KindSeries:
		ys := make([]float64, len(f.Points))
		for i, p := range f.Points {
			ys[i] = p.Y
		}
		return summarize(ys), len(ys)
	case KindPercentiles:
		for k, v := range f.Percentiles {
			stats = append(stats, Stat{Label: k, Value: v})
		}
		sort.Slice(stats, func(i, j int) bool { return statRank(stats[i].Label) < statRank(stats[j].Label) })
		return stats, 0
	}
	return nil, 0
}

func statRank(label string) float64 {
	switch label {
	case "min":
		return -1
	case "max":
		return 1000
	case "mean":
		return 1001
	}
	v, _ := strconv.ParseFloat(label[1:], 64)
	return v
}

func summarize(values []float64) []Stat {
	if len(values) == 0 {
		return nil
	}
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	out := []Stat{{"min", s[0]}}
	for _, p := range SampleStats {
		out = append(out, Stat{Label: "p" + strconv.FormatFloat(p, 'f', -1, 64), Value: Percentile(s, p)})
	}
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return append(out, Stat{"max", s[len(s)-1]}, Stat{"mean", sum / float64(len(s))})
}

// Percentile is the nearest-rank percentile of sorted values: with few
// samples p99 is the worst one seen, never an interpolation below it.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}
