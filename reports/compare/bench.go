package compare

import (
	"fmt"
	"math"

	"github.com/proxyproof/proxyproof/reports/run"
)

// Ratio is one bench figure of one scale x case as the ratio of the proxier
// under test to upstream, in A and in B. Timings are compared as ratios
// because both proxiers of a run share the machine's load at that time;
// absolute times from two runs (two CI machines) are not comparable.
type Ratio struct {
	Scale, Case, Figure, Unit string
	// A and B are the two runs' ours/upstream; 0 when not measured there.
	A, B RatioSide
	// Pct is how far B's ratio moved from A's, NaN when either is missing.
	Pct float64
}

// RatioSide is one run's ratio and the two figures it is made of.
type RatioSide struct {
	Ratio, Ours, Upstream float64
	// Unmeasured says why there is no ratio: "ours did not finish",
	// "upstream did not finish", "not measured: ..." or "" when there is one.
	Unmeasured string
	// DidNotFinish names the proxier that did not finish, when that is why.
	DidNotFinish string
}

// Measured is true when the side has a ratio.
func (s RatioSide) Measured() bool { return s.Ratio > 0 }

// BenchRatios pairs the bench figures of A and B by scale, case and figure.
// ours and upstream name the proxiers of a row (the bench writes "ours" and
// "upstream"). Groups only one run has are left out: the caller decides
// whether a case the other run lacks matters.
func BenchRatios(a, b *run.Bench, ours, upstream string) []Ratio {
	if a == nil || b == nil {
		return nil
	}
	ga, _ := run.GroupBench(a.Rows)
	gb, _ := run.GroupBench(b.Rows)
	inB := map[[2]string]run.BenchGroup{}
	for _, g := range gb {
		inB[[2]string{g.Scale, g.Case}] = g
	}
	var out []Ratio
	for _, g := range ga {
		h, ok := inB[[2]string{g.Scale, g.Case}]
		if !ok {
			continue
		}
		for _, m := range run.BenchMetrics {
			r := Ratio{Scale: g.Scale, Case: g.Case, Figure: m.Name, Unit: m.Unit,
				A: side(g, ours, upstream, m), B: side(h, ours, upstream, m), Pct: math.NaN()}
			if !r.A.Measured() && !r.B.Measured() {
				continue // a figure neither run has (connect times of a row without a dataplane)
			}
			if r.A.Measured() && r.B.Measured() {
				r.Pct = (r.B.Ratio/r.A.Ratio - 1) * 100
			}
			out = append(out, r)
		}
	}
	return out
}

func side(g run.BenchGroup, ours, upstream string, m run.BenchMetric) RatioSide {
	ro, okO := g.Rows[ours]
	ru, okU := g.Rows[upstream]
	switch {
	case !okO:
		return RatioSide{Unmeasured: fmt.Sprintf("no %s row", ours)}
	case !okU:
		return RatioSide{Unmeasured: fmt.Sprintf("no %s row", upstream)}
	case ro.NotMeasured:
		return RatioSide{Unmeasured: ro.Reason}
	case ru.NotMeasured:
		return RatioSide{Unmeasured: ru.Reason}
	}
	s := RatioSide{Ours: m.Get(ro), Upstream: m.Get(ru)}
	switch {
	case s.Ours > 0 && s.Upstream > 0:
		s.Ratio = s.Ours / s.Upstream
	case ro.DidNotFinish && s.Ours == 0:
		s.DidNotFinish = ours
		s.Unmeasured = ours + " did not finish"
		if ro.Reason != "" {
			s.Unmeasured += ": " + ro.Reason
		}
	case ru.DidNotFinish && s.Upstream == 0:
		s.DidNotFinish = upstream
		s.Unmeasured = upstream + " did not finish"
	default:
		s.Unmeasured = "not measured"
	}
	return s
}

// Text is the ratio ("0.82") or why there is none.
func (s RatioSide) Text() string {
	if !s.Measured() {
		return s.Unmeasured
	}
	return fmt.Sprintf("%.2f", s.Ratio)
}
