package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/run"
)

// BaselineKind marks a baseline file, so a run.json or bench.json given by
// mistake is named as such instead of read as an empty baseline.
const BaselineKind = "proxyproof-gate-baseline"

// Baseline is what a gate compares against: each mode's spec outcomes and
// the bench rows of one run. Suite figures (absolute times) are left out:
// they are not comparable between machines.
type Baseline struct {
	Kind string `json:"kind"`
	// TakenFrom is the run directory the baseline was written from.
	TakenFrom string       `json:"takenFrom"`
	Taken     time.Time    `json:"taken"`
	Run       run.Meta     `json:"run"`
	Modes     []ModeResult `json:"modes"`
	Bench     *run.Bench   `json:"bench,omitempty"`
}

// ModeResult is one mode's specs.
type ModeResult struct {
	Name  string       `json:"name"`
	Specs []SpecResult `json:"specs"`
}

// SpecResult is one spec's outcome; Suite marks a failed suite-level node.
type SpecResult struct {
	Name    string      `json:"name"`
	Feature string      `json:"feature,omitempty"`
	Labels  []string    `json:"labels,omitempty"`
	Outcome run.Outcome `json:"outcome"`
	Suite   bool        `json:"suite,omitempty"`
}

// FromRun takes the baseline of a loaded run.
func FromRun(r *run.Run) Baseline {
	b := Baseline{Kind: BaselineKind, TakenFrom: r.Dir, Taken: time.Now().UTC(), Run: r.Meta, Bench: r.Bench}
	for _, m := range r.Modes {
		mr := ModeResult{Name: m.Name}
		for _, s := range m.Specs {
			mr.Specs = append(mr.Specs, SpecResult{Name: s.Name, Feature: s.Feature, Labels: s.Labels, Outcome: s.Outcome, Suite: s.Suite})
		}
		b.Modes = append(b.Modes, mr)
	}
	return b
}

// Write writes the baseline whole or not at all.
func (b Baseline) Write(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("baseline %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("baseline %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// AsRun is the baseline as a run the compare package reads: modes with their
// specs and counts, and the bench.
func (b Baseline) AsRun(name string) *run.Run {
	r := &run.Run{Dir: name, Meta: b.Run, Bench: b.Bench}
	for _, mr := range b.Modes {
		m := &run.Mode{Name: mr.Name}
		for _, s := range mr.Specs {
			spec := &run.Spec{Mode: mr.Name, Name: s.Name, Feature: s.Feature, Labels: s.Labels, Outcome: s.Outcome, Suite: s.Suite}
			m.Specs = append(m.Specs, spec)
			countSpec(&m.Counts, spec)
		}
		r.Modes = append(r.Modes, m)
	}
	return r
}

func countSpec(c *run.Counts, s *run.Spec) {
	if s.Suite {
		c.SetupFailed++
		return
	}
	c.Total++
	switch s.Outcome {
	case run.Passed:
		c.Passed++
	case run.Failed:
		c.Failed++
	case run.Skipped:
		c.Skipped++
	case run.Pending:
		c.Pending++
	}
}

// LoadBaseline reads BASELINE: a run directory (read as the report reads
// it) or a baseline file. Every error names the file, and the line where
// the file has one.
func LoadBaseline(path string) (*run.Run, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w (write one with make gate-baseline RUN=<run dir>)", path, err)
	}
	if info.IsDir() {
		r, err := run.Load(path)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		return r, nil
	}
	b, err := ReadBaselineFile(path)
	if err != nil {
		return nil, err
	}
	return b.AsRun(path), nil
}

// ReadBaselineFile decodes and checks a baseline file.
func ReadBaselineFile(path string) (Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Baseline{}, fmt.Errorf("baseline %s: %w", path, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Baseline{}, fmt.Errorf("baseline %s: the file is empty", path)
	}
	doc, err := parseTree(data)
	if err != nil {
		return Baseline{}, fmt.Errorf("baseline %s: not JSON: %w", path, err)
	}
	var b Baseline
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Baseline{}, fmt.Errorf("baseline %s:%w", path, decodeError(data, doc, err))
	}
	if err := b.validate(doc); err != nil {
		return Baseline{}, fmt.Errorf("baseline %s:%w", path, err)
	}
	return b, nil
}

// decodeError puts the line in front of a strict decoder's error.
func decodeError(data []byte, doc *tree, err error) error {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		return fmt.Errorf("%d: %s: got JSON %s, want %s", lineAt(data, typ.Offset), typ.Field, typ.Value, typ.Type)
	case errors.As(err, &syn):
		return fmt.Errorf("%d: %w", lineAt(data, syn.Offset), err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return fmt.Errorf("%d: unknown field %q (a baseline is written by make gate-baseline)", doc.keyLine(field), field)
	}
	return fmt.Errorf(" %w", err)
}

func lineAt(data []byte, offset int64) int {
	offset = min(max(offset, 0), int64(len(data)))
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

func (b Baseline) validate(doc *tree) error {
	if b.Kind != BaselineKind {
		return fmt.Errorf("%d: kind %q, want %q: this is not a gate baseline (make gate-baseline RUN=<run dir> writes one)", doc.line("kind"), b.Kind, BaselineKind)
	}
	if len(b.Modes) == 0 {
		return fmt.Errorf("%d: no modes: the baseline holds no spec outcomes", doc.line("modes"))
	}
	for i, m := range b.Modes {
		if m.Name == "" {
			return fmt.Errorf("%d: modes[%d] has no name", doc.line("modes", i), i)
		}
		for j, s := range m.Specs {
			switch s.Outcome {
			case run.Passed, run.Failed, run.Skipped, run.Pending:
			default:
				return fmt.Errorf("%d: mode %s spec %q: outcome %q, want passed, failed, skipped or pending", doc.line("modes", i, "specs", j, "outcome"), m.Name, s.Name, s.Outcome)
			}
			if s.Name == "" {
				return fmt.Errorf("%d: modes[%d].specs[%d] has no name", doc.line("modes", i, "specs", j), i, j)
			}
		}
	}
	if b.Bench != nil {
		for i, r := range b.Bench.Rows {
			if r.Mode == "" || r.Proxier == "" || r.Services <= 0 || r.Endpoints <= 0 {
				return fmt.Errorf("%d: bench.rows[%d] needs mode, proxier, services and endpoints", doc.line("bench", "rows", i), i)
			}
			for _, m := range run.BenchMetrics {
				if v := m.Get(r); !(v >= 0) || v > 1e15 {
					return fmt.Errorf("%d: bench.rows[%d] %s: %v is not a finite non-negative number", doc.line("bench", "rows", i), i, m.Name, v)
				}
			}
		}
	}
	return nil
}
