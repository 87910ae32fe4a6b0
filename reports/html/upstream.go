package html

import (
	"slices"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/run"
)

// upstreamView is the report's section on a make conformance run:
// upstream's specs, how many passed per mode, and every spec not run
// with why (the spec list's line, or the mode left out).
type upstreamView struct {
	Version, Provider, Proxier, SpecList string
	Modes                                []upstreamModeView
	LeftOut                              []run.ConformanceLeftOut
	NotRun                               []upstreamNotRun
	Images                               []string
}

type upstreamModeView struct {
	Mode, Cluster, Took, Error string
	Counts                     run.UpstreamCounts
	OK                         bool
}

type upstreamNotRun struct {
	Name, Reason, Why string
	Modes             string
}

func upstream(c *run.Conformance) *upstreamView {
	if c == nil {
		return nil
	}
	v := &upstreamView{Version: c.Version, Provider: c.Provider, Proxier: c.Proxier, SpecList: c.SpecList, LeftOut: c.LeftOut, Images: c.Images}
	notRun := map[string]*upstreamNotRun{}
	var names []string
	for _, m := range c.Modes {
		v.Modes = append(v.Modes, upstreamModeView{
			Mode: m.Mode, Cluster: m.Cluster, Took: duration(m.End.Sub(m.Start).Round(time.Second)), Error: m.Error, Counts: m.Counts,
			OK: m.Error == "" && len(m.Problems) == 0 && m.Counts.Failed == 0 && m.Counts.Passed > 0,
		})
		for _, s := range m.Specs {
			if s.Outcome != run.UpstreamNotRun {
				continue
			}
			n, ok := notRun[s.Name]
			if !ok {
				n = &upstreamNotRun{Name: s.Name, Reason: s.Reason, Why: s.Message}
				notRun[s.Name] = n
				names = append(names, s.Name)
			}
			n.Modes = strings.TrimPrefix(n.Modes+", "+m.Mode, ", ")
		}
	}
	slices.Sort(names)
	for _, n := range names {
		v.NotRun = append(v.NotRun, *notRun[n])
	}
	return v
}

// sideBySide is the compare page's table of upstream specs when both runs
// are make conformance runs: each spec's outcome in A and in B per mode
// (ours vs upstream kube-proxy on the same clusters and modes).
type sideBySide struct {
	Modes []string
	Rows  []sideRow
	// Same counts the specs whose outcome is the same in A and B in every
	// mode; Differ the others.
	Same, Differ int
}

type sideRow struct {
	Name  string
	Cells []sideCell
	Diff  bool
}

type sideCell struct{ A, B, Why string }

func sideBySideOf(a, b *run.Conformance) *sideBySide {
	if a == nil || b == nil {
		return nil
	}
	byMode := func(c *run.Conformance) map[string]map[string]run.UpstreamSpec {
		out := map[string]map[string]run.UpstreamSpec{}
		for _, m := range c.Modes {
			out[m.Mode] = map[string]run.UpstreamSpec{}
			for _, s := range m.Specs {
				out[m.Mode][s.Name] = s
			}
		}
		return out
	}
	am, bm := byMode(a), byMode(b)
	v := &sideBySide{}
	names := map[string]bool{}
	for _, mode := range []string{"iptables", "nftables", "ipvs"} {
		if am[mode] == nil && bm[mode] == nil {
			continue
		}
		v.Modes = append(v.Modes, mode)
		for n := range am[mode] {
			names[n] = true
		}
		for n := range bm[mode] {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	for _, n := range sorted {
		row := sideRow{Name: n}
		for _, mode := range v.Modes {
			sa, okA := am[mode][n]
			sb, okB := bm[mode][n]
			c := sideCell{A: outcomeOr(sa, okA), B: outcomeOr(sb, okB)}
			if c.A != c.B {
				row.Diff = true
				c.Why = firstLine(sb.Message)
				if c.B == run.UpstreamPassed {
					c.Why = firstLine(sa.Message)
				}
			}
			row.Cells = append(row.Cells, c)
		}
		if row.Diff {
			v.Differ++
		} else {
			v.Same++
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

func outcomeOr(s run.UpstreamSpec, ok bool) string {
	if !ok {
		return "absent"
	}
	return s.Outcome
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// outcomeClass is the cell class of an upstream outcome.
func outcomeClass(o string) string {
	switch o {
	case run.UpstreamPassed, run.UpstreamFailed:
		return o
	}
	return "skipped"
}
