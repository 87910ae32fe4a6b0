package html

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/ginkgo"
	"github.com/proxyproof/proxyproof/reports/run"
)

// conformanceRun writes a make conformance run directory in iptables
// mode: run.json, conformance.json (one spec per outcome given, ipvs left
// out) and the mode's ginkgo.json, then loads it.
func conformanceRun(t *testing.T, proxier string, outcomes map[string]string) *run.Run {
	t.Helper()
	dir := t.TempDir()
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	mode := run.ConformanceMode{Mode: "iptables", Cluster: "c-iptables", Start: start, End: start.Add(21 * time.Minute)}
	rep := ginkgo.Report{SuiteDescription: "Kubernetes e2e suite", StartTime: start, EndTime: mode.End}
	for name, o := range outcomes {
		s := run.UpstreamSpec{Name: name, Outcome: o}
		sr := ginkgo.SpecReport{LeafNodeType: "It", LeafNodeText: name, State: o}
		switch o {
		case run.UpstreamNotRun:
			s.Reason, s.Message = "disruptive", "restarts kube-proxy"
			sr.State = ginkgo.StateSkipped
		case run.UpstreamFailed:
			s.Message = "Timed out after 120s"
		}
		mode.Specs = append(mode.Specs, s)
		rep.SpecReports = append(rep.SpecReports, sr)
	}
	mode.Counts = run.CountUpstream(mode.Specs)
	c := run.Conformance{Version: "v1.34.4", Provider: "kind", Proxier: proxier, Modes: []run.ConformanceMode{mode},
		LeftOut: []run.ConformanceLeftOut{{Mode: "ipvs", Why: "no ip_vs in the host kernel"}}}
	if err := run.WriteConformance(dir, c); err != nil {
		t.Fatal(err)
	}
	writeJSONFile(t, filepath.Join(dir, run.MetaFile), run.Meta{Name: "conformance-" + proxier, Proxier: run.Proxier{Name: proxier},
		Modes: []run.ModeMeta{{Name: "iptables", Start: mode.Start, End: mode.End}}})
	writeJSONFile(t, filepath.Join(dir, "iptables", run.GinkgoFile), []ginkgo.Report{rep})
	r, err := run.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	basic    = "[sig-network] Services should serve a basic endpoint from pods [Conformance]"
	affinity = "[sig-network] Services should have session affinity timeout work for NodePort service [LinuxOnly]"
	restart  = "[sig-network] Services should work after restarting kube-proxy [Disruptive]"
)

func TestReportOfAConformanceRunCountsUpstreamSpecsPerModeAndListsTheNotRun(t *testing.T) {
	r := conformanceRun(t, "ours", map[string]string{basic: run.UpstreamPassed, affinity: run.UpstreamFailed, restart: run.UpstreamNotRun})
	var buf bytes.Buffer
	if err := Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := xhtml.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	counts := find(doc, "table", "upstream-counts")
	if len(counts) != 1 {
		t.Fatalf("%d upstream count tables, want 1", len(counts))
	}
	var modeRows []string
	for _, tr := range find(counts[0], "tr") {
		if attr(tr, "data-mode") != "" {
			var cells []string
			for _, td := range find(tr, "td") {
				cells = append(cells, text(td))
			}
			modeRows = append(modeRows, strings.Join(cells, " "))
		}
	}
	c := r.Conformance
	for _, m := range c.Modes {
		want := m.Mode + " " + strconv.Itoa(m.Counts.Passed) + " " + strconv.Itoa(m.Counts.Failed) + " " + strconv.Itoa(m.Counts.NotRun) + " " + strconv.Itoa(m.Counts.Skipped)
		if !containsPrefix(modeRows, want) {
			t.Errorf("no counts row %q in the upstream section; rows: %q", want, modeRows)
		}
	}
	for _, l := range c.LeftOut {
		if !containsPrefix(modeRows, l.Mode+" not run: ") {
			t.Errorf("left-out mode %s not listed with why; rows: %q", l.Mode, modeRows)
		}
	}
	notRun := find(doc, "table", "upstream-not-run")
	if len(notRun) != 1 || !strings.Contains(text(notRun[0]), "[Disruptive]") || !strings.Contains(text(notRun[0]), "disruptive") {
		t.Errorf("the not-run table does not list the disruptive specs with their reason")
	}
}

func TestCompareOfTwoConformanceRunsShowsEveryUpstreamSpecSideBySide(t *testing.T) {
	a := conformanceRun(t, "ours", map[string]string{basic: run.UpstreamPassed, affinity: run.UpstreamFailed, restart: run.UpstreamNotRun})
	b := conformanceRun(t, "kube-proxy", map[string]string{basic: run.UpstreamPassed, affinity: run.UpstreamPassed, restart: run.UpstreamNotRun})
	d, err := compare.Runs(a, b, compare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := RenderCompare(&buf, d); err != nil {
		t.Fatal(err)
	}
	doc, err := xhtml.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tables := find(doc, "table", "side-by-side")
	if len(tables) != 1 {
		t.Fatalf("%d side-by-side tables, want 1", len(tables))
	}
	specs := map[string]bool{}
	for _, m := range a.Conformance.Modes {
		for _, s := range m.Specs {
			specs[s.Name] = true
		}
	}
	body := find(tables[0], "tbody")[0]
	n := 0
	for tr := body.FirstChild; tr != nil; tr = tr.NextSibling {
		if tr.Type == xhtml.ElementNode {
			n++
		}
	}
	if n != len(specs) {
		t.Errorf("side by side has %d rows, want one per upstream spec (%d)", n, len(specs))
	}
	flips := find(tables[0], "tr", "flip")
	if len(flips) != 1 || !strings.Contains(text(flips[0]), "session affinity timeout") || !strings.Contains(text(flips[0]), "Timed out after 120s") {
		t.Errorf("want one differing row, the affinity spec with ours' failure message; got %d", len(flips))
	}
}

func containsPrefix(rows []string, prefix string) bool {
	for _, r := range rows {
		if strings.HasPrefix(strings.Join(strings.Fields(r), " "), prefix) {
			return true
		}
	}
	return false
}
