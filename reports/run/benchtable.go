package run

import (
	"fmt"
	"strings"
)

// BenchMetric is one figure of a bench row: a column of the printed table
// and a chart in the report.
type BenchMetric struct {
	Name string
	Unit string
	Get  func(BenchRow) float64
}

// BenchMetrics are the figures every bench row compares, in table order.
var BenchMetrics = []BenchMetric{
	{"first sync", "s", func(r BenchRow) float64 { return r.FirstSyncS }},
	{"change p50", "ms", func(r BenchRow) float64 { return r.ChangeP50Ms }},
	{"change p99", "ms", func(r BenchRow) float64 { return r.ChangeP99Ms }},
	{"api write p50", "ms", func(r BenchRow) float64 { return r.WriteP50Ms }},
	{"api write p99", "ms", func(r BenchRow) float64 { return r.WriteP99Ms }},
	{"after write p50", "ms", func(r BenchRow) float64 { return r.AfterWriteP50Ms }},
	{"after write p99", "ms", func(r BenchRow) float64 { return r.AfterWriteP99Ms }},
	{"burst", "s", func(r BenchRow) float64 { return r.BurstS }},
	{"rss", "MB", func(r BenchRow) float64 { return r.RSSMB }},
	{"cpu", "s", func(r BenchRow) float64 { return r.CPUS }},
	{"rules", "", func(r BenchRow) float64 { return float64(r.Rules + r.Elements) }},
	{"connect p50", "us", func(r BenchRow) float64 { return r.ConnectP50Us }},
	{"connect p99", "us", func(r BenchRow) float64 { return r.ConnectP99Us }},
}

// BenchGroup is one scale x case with each proxier's row: the unit the
// table and its ratios (ours/upstream) are made of.
type BenchGroup struct {
	Scale string // "10000x10"
	Case  string // "iptables/nft", "ipvs (VM)"
	Rows  map[string]BenchRow
}

// GroupBench groups rows by scale and case, in the order they first
// appear, and names the proxiers in the order they first appear.
func GroupBench(rows []BenchRow) (groups []BenchGroup, proxiers []string) {
	index := map[[2]string]int{}
	seen := map[string]bool{}
	for _, r := range rows {
		c := r.Case()
		if r.VM {
			c += " (VM)"
		}
		k := [2]string{r.Scale(), c}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, BenchGroup{Scale: k[0], Case: c, Rows: map[string]BenchRow{}})
		}
		groups[i].Rows[r.Proxier] = r
		if !seen[r.Proxier] {
			seen[r.Proxier] = true
			proxiers = append(proxiers, r.Proxier)
		}
	}
	return groups, proxiers
}

// Skipped is why no row of the group was measured, "" when one was.
func (g BenchGroup) Skipped() string {
	reason := ""
	for _, r := range g.Rows {
		if !r.NotMeasured {
			return ""
		}
		if reason == "" {
			reason = r.Reason
		}
	}
	return reason
}

// Cell is one proxier's figure as a person reads it: "1.70 s", "-",
// "did not finish", "not measured".
func (g BenchGroup) Cell(proxier string, m BenchMetric) string {
	r, ok := g.Rows[proxier]
	switch {
	case !ok:
		return "-"
	case r.NotMeasured:
		return "not measured"
	case r.DidNotFinish && m.Get(r) == 0:
		return "did not finish"
	}
	v := m.Get(r)
	if v == 0 {
		return "-"
	}
	return strings.TrimSpace(BenchNum(v) + " " + m.Unit)
}

// Ratio is a's figure over b's (below 1: a is better), or which of the
// two did not finish.
func (g BenchGroup) Ratio(a, b string, m BenchMetric) string {
	ra, okA := g.Rows[a]
	rb, okB := g.Rows[b]
	if !okA || !okB {
		return "-"
	}
	va, vb := m.Get(ra), m.Get(rb)
	switch {
	case va > 0 && vb > 0:
		return fmt.Sprintf("%.2f", va/vb)
	case va > 0 && rb.DidNotFinish:
		return b + " did not finish"
	case vb > 0 && ra.DidNotFinish:
		return a + " did not finish"
	}
	return "-"
}

// BenchNum prints a figure with three significant digits at most.
func BenchNum(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
