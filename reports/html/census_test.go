package html

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"

	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/census"
)

// withCensus copies fixture run "before" and gives its nftables mode the
// census c in run.json.
func withCensus(t *testing.T, c census.Census) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(testdata, "before"))); err != nil {
		t.Fatal(err)
	}
	meta, err := run.LoadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range meta.Modes {
		if meta.Modes[i].Name == "nftables" {
			meta.Modes[i].Census = []census.Census{c}
		}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, run.MetaFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReportShowsTheCensusAndFailsTheModeOfANodeWithALeftover(t *testing.T) {
	dir := withCensus(t, census.Census{When: census.End, Nodes: []census.Node{
		{Name: "n1", Expected: "nftables", Kernel: "6.18.44", Declared: "nftables", Carried: "nftables"},
		{Name: "n2", Expected: "nftables", Kernel: "6.1.0-57-amd64", Declared: "nftables", Carried: "nftables", Leftovers: []string{"iptables"},
			Problems: []string{"leftover iptables state: iptables-legacy: KUBE-SERVICES in nat"}},
	}})
	r, err := run.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := xhtml.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	tables := find(doc, "table", "census")
	if len(tables) != 1 || attr(tables[0], "id") != "census-nftables-end" {
		t.Fatalf("census tables: %d, want nftables' end census alone", len(tables))
	}
	rows := text(tables[0])
	for _, want := range []string{"n16.18.44nftablesnftablesnftables-", "n26.1.0-57-amd64nftablesnftablesnftablesiptables", "FAIL leftover iptables state: iptables-legacy: KUBE-SERVICES in nat"} {
		if !strings.Contains(rows, want) {
			t.Errorf("census table %q lacks %q", rows, want)
		}
	}
	if failed := find(tables[0], "tr", "failure"); len(failed) != 2 {
		t.Errorf("%d failing rows, want n2's and its problem's", len(failed))
	}
	verdict := ""
	for _, v := range find(doc, "li", "verdict", "bad") {
		if attr(v, "data-mode") == "nftables" {
			verdict = text(v)
		}
	}
	if !strings.Contains(verdict, "mode census at the end: node n2: leftover iptables state") {
		t.Errorf("nftables verdict %q: want it bad, naming n2's leftover", verdict)
	}
}
