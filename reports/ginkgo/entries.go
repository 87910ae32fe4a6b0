package ginkgo

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/proxyproof/proxyproof/reports/entry"
)

// Entries are this project's report entries of one spec, decoded.
type Entries struct {
	Figures []entry.Figure
	Probes  []entry.Probe
	Dumps   []entry.Dump
}

// DecodeEntries decodes the figure, probe and dump entries of a spec; other
// entries are left to the timeline. A malformed one is an error naming the
// spec and the entry, since a silently dropped figure is a wrong report.
func DecodeEntries(s SpecReport) (Entries, error) {
	var out Entries
	for _, e := range s.ReportEntries {
		var err error
		switch {
		case strings.HasPrefix(e.Name, entry.FigurePrefix):
			var f entry.Figure
			if err = decodeValue(e, &f); err == nil {
				if f.Name == "" {
					f.Name = strings.TrimPrefix(e.Name, entry.FigurePrefix)
				}
				if err = f.Validate(); err == nil {
					out.Figures = append(out.Figures, f)
				}
			}
		case e.Name == entry.ProbeName:
			var p entry.Probe
			if err = decodeValue(e, &p); err == nil {
				out.Probes = append(out.Probes, p)
			}
		case e.Name == entry.DumpName:
			var d entry.Dump
			if err = decodeValue(e, &d); err == nil && d.Path == "" {
				err = fmt.Errorf("dump has no path")
			}
			if err == nil {
				out.Dumps = append(out.Dumps, d)
			}
		}
		if err != nil {
			return Entries{}, fmt.Errorf("spec %q report entry %q (%s): %w", Name(s), e.Name, e.Location, err)
		}
	}
	return out, nil
}

func decodeValue(e ReportEntry, into any) error {
	if e.Value.AsJSON == "" || e.Value.AsJSON == "null" {
		return fmt.Errorf("no value")
	}
	if err := json.Unmarshal([]byte(e.Value.AsJSON), into); err != nil {
		return fmt.Errorf("value %s: %w", abbreviate(e.Value.AsJSON, 80), err)
	}
	return nil
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
