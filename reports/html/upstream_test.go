package html

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
)

// The conformance fixtures are two make conformance runs of this machine
// (ours, then upstream kube-proxy), trimmed: see
// reports/testdata/runs/conformance-*/README.
func loadRun(t *testing.T, name string) *run.Run {
	t.Helper()
	r, err := run.Load(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	if r.Conformance == nil {
		t.Fatalf("%s: no conformance.json read", name)
	}
	return r
}

func TestReportOfAConformanceRunCountsUpstreamSpecsPerModeAndListsTheNotRun(t *testing.T) {
	r := loadRun(t, "conformance-ours")
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
			modeRows = append(modeRows, text(tr))
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
	a, b := loadRun(t, "conformance-ours"), loadRun(t, "conformance-kube-proxy")
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
}

func containsPrefix(rows []string, prefix string) bool {
	for _, r := range rows {
		if strings.HasPrefix(strings.Join(strings.Fields(r), " "), prefix) {
			return true
		}
	}
	return false
}
