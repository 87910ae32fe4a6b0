package run

import (
	"fmt"
	"sort"

	"github.com/proxyproof/proxyproof/reports/entry"
)

// buildRows lays the specs of all modes into one matrix: feature groups in
// name order (suite setup first), specs by where they are in the source.
func (r *Run) buildRows() {
	byName := map[string]*Row{}
	for _, m := range r.Modes {
		for _, s := range m.Specs {
			row := byName[s.Name]
			if row == nil {
				row = &Row{Feature: s.Feature, Name: s.Name, Cells: map[string]*Spec{}, file: s.file, line: s.line}
				byName[s.Name] = row
				r.Rows = append(r.Rows, row)
			}
			row.Cells[m.Name] = s
		}
	}
	sort.SliceStable(r.Rows, func(i, j int) bool {
		a, b := r.Rows[i], r.Rows[j]
		if a.Feature != b.Feature {
			return featureRank(a.Feature) < featureRank(b.Feature)
		}
		if a.file != b.file {
			return a.file < b.file
		}
		if a.line != b.line {
			return a.line < b.line
		}
		return a.Name < b.Name
	})
	for _, row := range r.Rows {
		if len(r.Features) == 0 || r.Features[len(r.Features)-1] != row.Feature {
			r.Features = append(r.Features, row.Feature)
		}
	}
}

func featureRank(f string) string {
	if f == "suite setup" {
		return "\x00"
	}
	return f
}

// buildFigures gathers figures by name with the modes side by side. Samples
// of one name in one mode accumulate across specs; a precomputed figure or
// a series recorded twice keeps the last one and says so.
func (r *Run) buildFigures() {
	byName := map[string]*FigureSet{}
	for _, m := range r.Modes {
		for _, s := range m.Specs {
			for _, f := range s.figures {
				if f.Mode != "" && f.Mode != m.Name {
					r.Warnings = append(r.Warnings, fmt.Sprintf("figure %s recorded with mode %q in the %s run; shown under %s", f.Name, f.Mode, m.Name, m.Name))
				}
				f.Mode = m.Name
				set := byName[f.Name]
				if set == nil {
					set = &FigureSet{Name: f.Name, Title: f.Title, Unit: f.Unit, Kind: f.Kind(), XUnit: f.XUnit}
					byName[f.Name] = set
					r.Figures = append(r.Figures, set)
				}
				r.addFigure(set, f)
			}
		}
	}
	sort.SliceStable(r.Figures, func(i, j int) bool { return r.Figures[i].Name < r.Figures[j].Name })
}

func (r *Run) addFigure(set *FigureSet, f entry.Figure) {
	if f.Unit != set.Unit || f.Kind() != set.Kind {
		r.Warnings = append(r.Warnings, fmt.Sprintf("figure %s in mode %s: %s in %s, but first recorded as %s in %s; left out", f.Name, f.Mode, f.Kind(), f.Unit, set.Kind, set.Unit))
		return
	}
	for i := range set.ByMode {
		mf := &set.ByMode[i]
		if mf.Mode != f.Mode {
			continue
		}
		if set.Kind == entry.KindSamples {
			mf.Figure.Values = append(mf.Figure.Values, f.Values...)
			return
		}
		r.Warnings = append(r.Warnings, fmt.Sprintf("figure %s recorded more than once in mode %s; the last one is shown", f.Name, f.Mode))
		mf.Figure = f
		return
	}
	set.ByMode = append(set.ByMode, ModeFigure{Mode: f.Mode, Figure: f})
}

// Duration of the whole run: run.json's times, else the modes' span.
func (r *Run) Duration() (start, end int64, ok bool) {
	s, e := r.Meta.Start, r.Meta.End
	if !s.IsZero() && !e.IsZero() {
		return s.UnixNano(), e.UnixNano(), true // the runner's clock covers cluster set-up too
	}
	for _, m := range r.Modes {
		if ms := m.Start(); !ms.IsZero() && (s.IsZero() || ms.Before(s)) {
			s = ms
		}
		if me := m.End(); e.IsZero() || me.After(e) {
			e = me
		}
	}
	if s.IsZero() || e.IsZero() {
		return 0, 0, false
	}
	return s.UnixNano(), e.UnixNano(), true
}
