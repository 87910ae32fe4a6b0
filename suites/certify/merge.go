package certify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/proxyproof/proxyproof/reports/run"
)

// Names inside the merged run directory.
const (
	// SuiteDir and UpstreamDir hold the two runs, as their runners wrote them.
	SuiteDir    = "suite"
	UpstreamDir = "upstream"
	// conformanceFile is make conformance's record of the upstream specs
	// it selected (suites/conformance/doc.go); the report shows it.
	conformanceFile = "conformance.json"
	// upstreamLog is e2e.test's own log in each mode of upstream's run.
	upstreamLog = "e2e.log"
)

// Merge writes dir as one run directory of our suite's run (suite) and
// upstream's conformance run (upstream): per mode, one ginkgo.json with
// both suites' reports (the report and the JUnit show every spec, ours
// and upstream's, in the mode's column); run.json with our run's record,
// each mode's nodes from both clusters; run.log with our runner's log,
// then e2e.test's log per mode, then upstream's runner log (the bundle's
// e2e.log); and upstream's conformance.json. name and command are the
// merged run's.
func Merge(dir, suite, upstream, name, command string) error {
	ours, err := run.LoadMeta(suite)
	if err != nil {
		return fmt.Errorf("our suite's run: %w", err)
	}
	theirs, err := run.LoadMeta(upstream)
	if err != nil {
		return fmt.Errorf("upstream's conformance run: %w", err)
	}
	merged := ours
	merged.Name, merged.Command = name, command
	if theirs.Start.Before(merged.Start) {
		merged.Start = theirs.Start
	}
	if theirs.End.After(merged.End) {
		merged.End = theirs.End
	}
	merged.Modes = mergeModes(ours.Modes, theirs.Modes)
	for _, m := range merged.Modes {
		if err := mergeMode(dir, suite, upstream, m.Name); err != nil {
			return err
		}
	}
	if err := mergeLogs(dir, suite, upstream, merged.Modes); err != nil {
		return err
	}
	if err := copyIfThere(filepath.Join(upstream, conformanceFile), filepath.Join(dir, conformanceFile)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(merged, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, run.MetaFile), append(b, '\n'), 0o644)
}

// mergeModes keeps our modes' order, then upstream's other modes; a mode
// in both gets the nodes of both clusters.
func mergeModes(ours, theirs []run.ModeMeta) []run.ModeMeta {
	out := make([]run.ModeMeta, 0, len(ours))
	at := map[string]int{}
	for _, m := range ours {
		m.Nodes = maps.Clone(m.Nodes)
		at[m.Name] = len(out)
		out = append(out, m)
	}
	for _, m := range theirs {
		i, ok := at[m.Name]
		if !ok {
			out = append(out, m)
			continue
		}
		if out[i].Nodes == nil {
			out[i].Nodes = map[string]string{}
		}
		maps.Copy(out[i].Nodes, m.Nodes)
		out[i].Census = append(out[i].Census, m.Census...)
		if m.Start.Before(out[i].Start) {
			out[i].Start = m.Start
		}
		if m.End.After(out[i].End) {
			out[i].End = m.End
		}
	}
	return out
}

// mergeMode writes <dir>/<mode>/ginkgo.json: the reports of both runs'
// ginkgo.json (each an array of reports or one), ours first; our failure
// dumps are linked where the report looks for them.
func mergeMode(dir, suite, upstream, mode string) error {
	var reports []json.RawMessage
	for _, from := range []string{suite, upstream} {
		rs, err := rawReports(filepath.Join(from, mode, run.GinkgoFile))
		if err != nil {
			return err
		}
		reports = append(reports, rs...)
	}
	if err := os.MkdirAll(filepath.Join(dir, mode), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(reports)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, mode, run.GinkgoFile), b, 0o644); err != nil {
		return err
	}
	dumps := filepath.Join(suite, mode, run.DumpsDir)
	if _, err := os.Stat(dumps); err != nil {
		return nil
	}
	rel, err := filepath.Rel(filepath.Join(dir, mode), dumps)
	if err != nil {
		return err
	}
	return os.Symlink(rel, filepath.Join(dir, mode, run.DumpsDir))
}

// rawReports are a ginkgo.json's reports, untouched; a mode one run did
// not have gives none.
func rawReports(path string) ([]json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		return []json.RawMessage{b}, nil
	}
	var out []json.RawMessage
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// mergeLogs writes run.log: each part under a line naming where it came
// from, so a reviewer finds e2e.test's own log unaltered.
func mergeLogs(dir, suite, upstream string, modes []run.ModeMeta) error {
	parts := []string{filepath.Join(suite, run.LogFile)}
	for _, m := range modes {
		parts = append(parts, filepath.Join(upstream, m.Name, upstreamLog))
	}
	parts = append(parts, filepath.Join(upstream, run.LogFile))
	var b strings.Builder
	for _, p := range parts {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "===== %s =====\n%s", rel, data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return os.WriteFile(filepath.Join(dir, run.LogFile), []byte(b.String()), 0o644)
}

func copyIfThere(from, to string) error {
	data, err := os.ReadFile(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}
