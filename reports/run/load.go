package run

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/reports/ginkgo"
)

// MaxDumpBytes caps one rule dump in the page; a 4,000-Service iptables-save
// is megabytes and the full file stays in the run directory.
const MaxDumpBytes = 1 << 20

// knownModes come first, in this order, so every report reads alike.
var knownModes = []string{"iptables", "nftables", "ipvs"}

// Load reads a run directory completely.
func Load(dir string) (*Run, error) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // the page names the directory; relative to what would be unclear
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("run directory %s: not a directory", dir)
	}
	meta, err := LoadMeta(dir)
	if err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	r := &Run{Dir: dir, Meta: meta}
	names, err := modeNames(dir, meta)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		m, err := r.loadMode(name)
		if err != nil {
			return nil, fmt.Errorf("run directory %s: mode %s: %w", dir, name, err)
		}
		r.Modes = append(r.Modes, m)
	}
	if r.Bench, err = LoadBench(dir); err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	if r.Conformance, err = LoadConformance(dir); err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, LogFile)); err == nil {
		r.LogPath = filepath.Join(dir, LogFile)
	}
	r.buildRows()
	r.buildFigures()
	return r, nil
}

// modeNames are the modes of run.json plus any directory holding a Ginkgo
// report that run.json forgot, known modes first.
func modeNames(dir string, meta Meta) ([]string, error) {
	set := map[string]bool{}
	for _, m := range meta.Modes {
		set[m.Name] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), GinkgoFile)); err == nil {
				set[e.Name()] = true
			}
		}
	}
	var out []string
	for _, k := range knownModes {
		if set[k] {
			out = append(out, k)
			delete(set, k)
		}
	}
	for _, m := range meta.Modes {
		if set[m.Name] {
			out = append(out, m.Name)
			delete(set, m.Name)
		}
	}
	rest := make([]string, 0, len(set))
	for k := range set {
		rest = append(rest, k)
	}
	sort.Strings(rest)
	return append(out, rest...), nil
}

func (r *Run) loadMode(name string) (*Mode, error) {
	m := &Mode{Name: name, Dir: filepath.Join(r.Dir, name)}
	for _, mm := range r.Meta.Modes {
		if mm.Name == name {
			m.Meta = mm
		}
	}
	reports, err := ginkgo.Load(filepath.Join(m.Dir, GinkgoFile))
	if err != nil {
		return nil, err
	}
	m.Reports = reports
	// A node running another mode than it was made to, or another mode's
	// leftovers, fails the mode whatever its specs did.
	m.Problems = append(m.Problems, m.Meta.CensusFailures()...)
	seen := map[string]int{}
	for _, rep := range reports {
		m.Problems = append(m.Problems, rep.SpecialSuiteFailureReasons...)
		for _, sr := range rep.SpecReports {
			if !ginkgo.IsSpec(sr) && OutcomeOf(sr.State) != Failed {
				continue // a passing BeforeSuite is not news
			}
			s, err := r.newSpec(m, sr)
			if err != nil {
				return nil, err
			}
			// Two specs with one text (table entries) stay two rows.
			if seen[s.Name]++; seen[s.Name] > 1 {
				s.Name = fmt.Sprintf("%s (%d)", s.Name, seen[s.Name])
			}
			m.Specs = append(m.Specs, s)
			m.Counts.add(s)
		}
	}
	return m, nil
}

func (c *Counts) add(s *Spec) {
	if s.Suite {
		c.SetupFailed++
		return
	}
	c.Total++
	switch s.Outcome {
	case Passed:
		c.Passed++
	case Failed:
		c.Failed++
	case Skipped:
		c.Skipped++
	case Pending:
		c.Pending++
	}
}

func (r *Run) newSpec(m *Mode, sr ginkgo.SpecReport) (*Spec, error) {
	s := &Spec{
		Mode:     m.Name,
		Name:     ginkgo.Name(sr),
		Feature:  ginkgo.Feature(sr),
		Labels:   sr.Labels(),
		Suite:    !ginkgo.IsSpec(sr),
		State:    sr.State,
		Outcome:  OutcomeOf(sr.State),
		Reason:   ginkgo.Reason(sr),
		Location: sr.LeafNodeLocation.String(),
		Start:    sr.StartTime,
		Duration: sr.RunTime,
		Attempts: sr.NumAttempts,
		Output:   sr.CapturedGinkgoWriterOutput,
		file:     sr.LeafNodeLocation.FileName,
		line:     sr.LeafNodeLocation.LineNumber,
	}
	if s.Suite {
		s.Feature = "suite setup"
	}
	s.ID = entry.SpecID(sr.FullText())
	ents, err := ginkgo.DecodeEntries(sr)
	if err != nil {
		return nil, err
	}
	s.figures = ents.Figures
	s.Probes = ents.Probes
	if s.Outcome == Failed {
		if f := sr.Failure; f != nil {
			s.Message = strings.TrimSpace(f.Message)
			if f.ForwardedPanic != "" {
				s.Message = strings.TrimSpace(s.Message + "\npanic: " + f.ForwardedPanic)
			}
			s.FailureLocation = f.Location.String()
		}
		s.Timeline = ginkgo.Timeline(sr)
		s.Dumps = r.loadDumps(m, s, ents.Dumps)
	}
	return s, nil
}

// loadDumps reads the dumps a spec named and those in its conventional
// directory. A dump that cannot be read is a warning: dumps are collected
// best-effort after a failure and must not hide the failure itself.
func (r *Run) loadDumps(m *Mode, s *Spec, named []entry.Dump) []RuleDump {
	var out []RuleDump
	seen := map[string]bool{}
	add := func(d entry.Dump) {
		if !filepath.IsLocal(d.Path) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("mode %s spec %q: dump path %q leaves the mode directory; ignored", m.Name, s.Name, d.Path))
			return
		}
		full := filepath.Join(m.Dir, d.Path)
		if seen[full] {
			return
		}
		seen[full] = true
		text, truncated, err := readCapped(full, MaxDumpBytes)
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("mode %s spec %q: rule dump: %v", m.Name, s.Name, err))
			return
		}
		rel, _ := filepath.Rel(r.Dir, full)
		out = append(out, RuleDump{Node: d.Node, Kind: d.Kind, Path: rel, Text: text, Truncated: truncated})
	}
	for _, d := range named {
		add(d)
	}
	files, _ := filepath.Glob(filepath.Join(m.Dir, DumpsDir, s.ID, "*.txt"))
	sort.Strings(files)
	for _, f := range files {
		rel, _ := filepath.Rel(m.Dir, f)
		add(entry.Dump{Node: strings.TrimSuffix(filepath.Base(f), ".txt"), Path: rel})
	}
	// The dump of the node the failing probe ran on first.
	nodes := map[string]bool{}
	for _, p := range s.ShownProbes() {
		nodes[p.Node] = true
	}
	sort.SliceStable(out, func(i, j int) bool { return nodes[out[i].Node] && !nodes[out[j].Node] })
	return out
}

func readCapped(path string, limit int64) (string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", false, fmt.Errorf("%s: missing", path)
		}
		return "", false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return string(b[:limit]), true, nil
	}
	return string(b), false, nil
}
