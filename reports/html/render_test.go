package html

import (
	"bytes"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
)

const testdata = "../testdata/runs"

func init() { Now = func() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) } }

func render(t *testing.T, name string) (*run.Run, []byte, *xhtml.Node) {
	t.Helper()
	r, err := run.Load(filepath.Join(testdata, name))
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
	return r, buf.Bytes(), doc
}

// find returns the elements of a tag having every class given.
func find(n *xhtml.Node, tag string, classes ...string) []*xhtml.Node {
	var out []*xhtml.Node
	var walk func(*xhtml.Node)
	walk = func(n *xhtml.Node) {
		if n.Type == xhtml.ElementNode && n.Data == tag && hasClasses(n, classes) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func hasClasses(n *xhtml.Node, want []string) bool {
	have := strings.Fields(attr(n, "class"))
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func attr(n *xhtml.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *xhtml.Node) string {
	var b strings.Builder
	var walk func(*xhtml.Node)
	walk = func(n *xhtml.Node) {
		if n.Type == xhtml.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

func TestReportShowsVerdictsFirstThenEnvironment(t *testing.T) {
	_, _, doc := render(t, "before")
	verdicts := find(doc, "li", "verdict")
	want := []struct{ text, class string }{
		{"iptables: 8/9 passed, 1 pending", "ok"},
		{"nftables: 7/9 passed, 1 failed, 1 pending", "bad"},
		{"ipvs: 6/9 passed, 1 failed, 1 skipped, 1 pending", "bad"},
	}
	if len(verdicts) != len(want) {
		t.Fatalf("%d verdict lines, want %d", len(verdicts), len(want))
	}
	for i, w := range want {
		if got := text(verdicts[i]); got != w.text || !hasClasses(verdicts[i], []string{w.class}) {
			t.Errorf("verdict %d = %q (class %q), want %q (%s)", i, got, attr(verdicts[i], "class"), w.text, w.class)
		}
	}
	sub := text(find(doc, "p", "sub")[0])
	if !strings.Contains(sub, "2026-06-01 10:15 UTC") || !strings.Contains(sub, "took 16m12s") {
		t.Errorf("date line %q, want the start and duration from run.json", sub)
	}
	env := text(find(doc, "table", "env")[0])
	for _, w := range []string{"local", "6.18.0-proxyproof", "v1.34.4", "proxyproof v0.1.0", "node-2: nftables", "node-1: ipvs (VM)"} {
		if !strings.Contains(env, w) {
			t.Errorf("environment table lacks %q", w)
		}
	}
}

func TestReportMatrixHasACellPerSpecAndModeGroupedByFeature(t *testing.T) {
	r, _, doc := render(t, "before")
	cells := find(doc, "td", "cell")
	if len(cells) != len(r.Rows)*len(r.Modes) {
		t.Errorf("%d matrix cells, want %d specs x %d modes", len(cells), len(r.Rows), len(r.Modes))
	}
	groups := find(doc, "tr", "group")
	if len(groups) != 6 || !strings.HasPrefix(text(groups[0]), "Churn") {
		t.Errorf("%d feature groups (first %q), want 6 starting with Churn", len(groups), text(groups[0]))
	}
	count := map[string]int{}
	for _, c := range cells {
		count[attr(c, "data-mode")+"/"+attr(c, "data-outcome")]++
		if attr(c, "data-outcome") == "failed" {
			links := find(c, "a")
			if len(links) != 1 || !strings.HasPrefix(attr(links[0], "href"), "#fail-"+attr(c, "data-mode")+"-") {
				t.Errorf("failed cell %q does not link to its failure", text(c))
			}
		}
		if attr(c, "data-outcome") == "skipped" && !strings.Contains(text(c), "needs a second node") {
			t.Errorf("skipped cell %q lacks the Skip() reason", text(c))
		}
	}
	for k, want := range map[string]int{"iptables/passed": 8, "nftables/failed": 1, "ipvs/failed": 1, "ipvs/skipped": 1, "ipvs/pending": 1} {
		if count[k] != want {
			t.Errorf("%s cells = %d, want %d (all: %v)", k, count[k], want, count)
		}
	}
}

func TestReportFailureShowsProbeExpectedSeenTimelineAndCollapsedDump(t *testing.T) {
	_, _, doc := render(t, "before")
	failures := find(doc, "article", "failure")
	if len(failures) != 2 {
		t.Fatalf("%d failures, want 2", len(failures))
	}
	nft := failures[0]
	if attr(nft, "data-mode") != "nftables" {
		t.Fatalf("first failure is %s, want nftables", attr(nft, "data-mode"))
	}
	probe := text(find(nft, "dl", "probe")[0])
	for _, w := range []string{"pod client-a on node-2 -> 192.168.50.3:30080 (default/web)", "HTTP 200 from one of web-0", "timeout after 5s"} {
		if !strings.Contains(probe, w) {
			t.Errorf("probe block %q lacks %q", probe, w)
		}
	}
	if rows := find(nft, "tr"); len(rows) < 3 || len(find(nft, "tr", "failure")) != 1 {
		t.Errorf("timeline has %d rows, want By steps and one failure row", len(rows))
	}
	dumps := find(nft, "details", "dump")
	if len(dumps) != 1 || attr(dumps[0], "open") != "" || !strings.Contains(text(dumps[0]), "map service-nodeports") {
		t.Errorf("want one collapsed nft dump; got %d", len(dumps))
	}
}

func TestReportChartsEveryFigureWithItsDataAndATable(t *testing.T) {
	r, _, doc := render(t, "before")
	figs := find(doc, "div", "figure")
	if len(figs) != len(r.Figures) {
		t.Fatalf("%d figures drawn, want %d", len(figs), len(r.Figures))
	}
	for _, f := range figs {
		name := attr(f, "data-figure")
		svgs := find(f, "svg", "chart")
		if len(svgs) != 1 {
			t.Errorf("figure %s has %d charts", name, len(svgs))
			continue
		}
		marks := append(find(svgs[0], "rect", "bar"), find(svgs[0], "circle", "point")...)
		if len(marks) == 0 {
			t.Errorf("figure %s chart has no data marks", name)
		}
		modes := map[string]bool{}
		for _, m := range marks {
			modes[attr(m, "data-series")] = true
		}
		if len(modes) != 3 {
			t.Errorf("figure %s shows modes %v, want the 3 side by side", name, modes)
		}
		if rows := find(find(f, "table")[0], "tr"); len(rows) != 4 {
			t.Errorf("figure %s table has %d rows, want a header and one per mode", name, len(rows))
		}
	}
	// The p99 of propagation in iptables is 415.2 ms in the fixture: the bar says so.
	var p99 []string
	for _, b := range find(doc, "rect", "bar") {
		if attr(b, "data-group") == "p99" && attr(b, "data-series") == "iptables" {
			p99 = append(p99, attr(b, "data-value"))
		}
	}
	if len(p99) == 0 || p99[0] != "415.2" {
		t.Errorf("iptables p99 bars %v, want the first (conntrack is a line) to be 415.2", p99)
	}
	if bench := find(doc, "section"); len(find(bench[len(bench)-1], "svg", "chart")) == 0 && len(find(doc, "table", "bench-table")) != 1 {
		t.Errorf("bench section missing")
	}
	table := find(doc, "table", "bench-table")[0]
	if got := len(find(table, "tr")); got != 1+4*len(run.BenchMetrics) {
		t.Errorf("bench table has %d rows, want header + 4 scale x mode groups x %d figures", got, len(run.BenchMetrics))
	}
	// The bench's own table: each proxier's figure and ours/upstream, and
	// a proxier that never finished says so rather than showing a zero.
	wantRows := [][]string{
		{"10000x10", "nftables", "first sync", "1.70 s", "62.4 s", "0.03"},
		{"10000x10", "iptables/nft", "first sync", "11.5 s", "did not finish", "upstream did not finish"},
		{"2000x5", "iptables/nft", "rss", "67.0 MB", "118 MB", "0.57"},
	}
	for _, want := range wantRows {
		found := false
		for _, tr := range find(table, "tr") {
			var cells []string
			for _, td := range find(tr, "td") {
				cells = append(cells, text(td))
			}
			found = found || slices.Equal(cells, want)
		}
		if !found {
			t.Errorf("bench table lacks the row %q", want)
		}
	}
	// Two Service counts: the curves. Ours in nftables stays flat where
	// upstream's grows (50 -> 49 us vs 60 -> 79 us in the fixture).
	curve := map[string][]string{}
	for _, c := range find(doc, "circle", "point") {
		if s := attr(c, "data-series"); strings.HasPrefix(s, "nftables, ") {
			curve[s] = append(curve[s], attr(c, "data-x")+":"+attr(c, "data-value"))
		}
	}
	if got := strings.Join(curve["nftables, ours"], " "); !strings.HasPrefix(got, "2000:50 10000:49") {
		t.Errorf("connect p50 curve of ours in nftables %q, want 2000:50 10000:49 first", got)
	}
	if got := strings.Join(curve["nftables, upstream"], " "); !strings.HasPrefix(got, "2000:60 10000:79") {
		t.Errorf("connect p50 curve of upstream in nftables %q, want 2000:60 10000:79 first", got)
	}
	var marks []string
	for _, m := range find(doc, "text", "mark") {
		marks = append(marks, attr(m, "data-series")+" "+attr(m, "data-group")+": "+text(m))
	}
	if len(marks) == 0 || marks[0] != "upstream iptables/nft: did not finish" {
		t.Errorf("did-not-finish marks %q, want upstream iptables/nft's first in the 10000x10 charts", marks)
	}
}

// The page must open offline: nothing to fetch, nothing to run.
func TestReportIsSelfContained(t *testing.T) {
	for _, name := range []string{"before", "empty", "filtered"} {
		_, page, doc := render(t, name)
		if bytes.Contains(bytes.ToLower(page), []byte("<script")) {
			t.Errorf("%s: page has a script", name)
		}
		for _, tag := range []string{"link", "img", "iframe", "object", "embed", "script"} {
			if n := find(doc, tag); len(n) > 0 {
				t.Errorf("%s: page has <%s>", name, tag)
			}
		}
		if m := regexp.MustCompile(`(?i)(https?:|url\(|@import|src=)`).Find(page); m != nil {
			t.Errorf("%s: page refers to something outside itself: %q", name, m)
		}
	}
}

func TestEmptyRunSaysSoInsteadOfAnEmptyTable(t *testing.T) {
	_, _, doc := render(t, "empty")
	if v := find(doc, "li", "verdict", "empty"); len(v) != 1 || text(v[0]) != "iptables: no specs ran" {
		t.Errorf("verdicts %d, want one amber 'no specs ran'", len(v))
	}
	if len(find(doc, "p", "empty")) != 1 || len(find(doc, "table", "matrix")) != 0 {
		t.Error("want the no-specs note instead of a matrix")
	}
}

// A bench run (make bench) has no suite: its page is the benchmarks, with
// a verdict counting rows, not a failed "no mode ran" banner.
func TestBenchRunIsABenchmarkReportNotAnEmptySuite(t *testing.T) {
	_, page, doc := render(t, "benchonly")
	if h1 := text(find(doc, "h1")[0]); h1 != "proxyproof benchmark report" {
		t.Errorf("title %q", h1)
	}
	verdicts := find(doc, "li", "verdict")
	if len(verdicts) != 1 || !strings.HasPrefix(text(verdicts[0]), "bench: 7 rows measured, 1 did not finish, 0 not measured") ||
		!hasClasses(verdicts[0], []string{"ok"}) {
		t.Errorf("verdicts %d, first %q; want one ok bench verdict counting the rows", len(verdicts), text(verdicts[0]))
	}
	if !strings.Contains(text(verdicts[0]), "upstream iptables/nft 10000x10 did not finish: first sync not complete after 300s") {
		t.Errorf("the verdict must name what did not finish: %q", text(verdicts[0]))
	}
	if bytes.Contains(page, []byte(`id="matrix"`)) || bytes.Contains(page, []byte("no mode ran")) {
		t.Error("a bench run shows no spec matrix and no missing-suite failure")
	}
	if len(find(doc, "table", "bench-table")) != 1 {
		t.Error("bench table missing")
	}
}

func TestComparePageListsFlipsAndMovedFigures(t *testing.T) {
	a, _ := run.Load(filepath.Join(testdata, "before"))
	b, _ := run.Load(filepath.Join(testdata, "after"))
	d, err := compare.Runs(a, b, compare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := RenderCompare(&buf, d); err != nil {
		t.Fatal(err)
	}
	doc, _ := xhtml.Parse(&buf)
	flips := find(doc, "tr", "flip")
	if len(flips) != 2 || !strings.Contains(text(flips[0]), "multi-port") {
		t.Errorf("%d flips (first %q), want 2 with the new iptables failure first", len(flips), text(flips[0]))
	}
	moved := find(doc, "tr", "moved")
	if len(moved) != 8 || !strings.Contains(text(moved[0]), "-33.3%") {
		t.Errorf("%d moved figure rows, want 8 at -33.3%%", len(moved))
	}
	if steady := find(doc, "details", "steady"); len(steady) != 1 {
		t.Error("unchanged figures should sit in one collapsed block")
	}
}
