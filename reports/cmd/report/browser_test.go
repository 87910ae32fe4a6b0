package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"

	"github.com/proxyproof/proxyproof/reports/run"
)

// TestReportInARealBrowserOffline renders the fixture run, loads it in
// headless Chromium with no network (its own network namespace when root),
// reads the DOM Chromium built and saves screenshots as artifacts.
func TestReportInARealBrowserOffline(t *testing.T) {
	chromium := ensureChromium(t)
	out := artifactDir(t)
	if err := Main([]string{"--out", out, filepath.Join(testdata, "before")}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(out, ReportFile)

	dom := browse(t, chromium, "--dump-dom", "file://"+page)
	doc, err := xhtml.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	verdicts := elements(doc, "li", "verdict")
	var lines []string
	for _, v := range verdicts {
		lines = append(lines, textOf(v))
	}
	if len(lines) != 3 || lines[1] != "nftables: 7/9 passed, 1 failed, 1 pending" {
		t.Errorf("verdict lines in the browser: %q", lines)
	}
	if cells := elements(doc, "td", "cell"); len(cells) != 27 {
		t.Errorf("%d matrix cells in the browser, want 27", len(cells))
	}
	charts := elements(doc, "svg", "chart")
	withData := 0
	for _, c := range charts {
		if len(elements(c, "rect", "bar"))+len(elements(c, "circle", "point")) > 0 {
			withData++
		}
	}
	if want := 4 + 4 + 2*len(run.BenchMetrics); len(charts) != want || withData != want {
		t.Errorf("%d chart svgs (%d with data points), want %d: 4 figures + bench charts (4 by Service count, 2 scales x %d figures), all with data", len(charts), withData, want, len(run.BenchMetrics))
	}

	// The page top as a person first sees it, then the failures and the
	// figures through a frame scrolled to their anchors.
	shots := map[string]string{"report-top.png": "file://" + page}
	for _, anchor := range []string{"failures", "figures", "bench"} {
		frame := filepath.Join(out, "view-"+anchor+".html")
		html := fmt.Sprintf(`<!DOCTYPE html><html><body style="margin:0"><iframe src="%s#%s" style="width:1280px;height:2000px;border:0"></iframe></body></html>`, ReportFile, anchor)
		if err := os.WriteFile(frame, []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
		shots["report-"+anchor+".png"] = "file://" + frame
	}
	for name, url := range shots {
		path := filepath.Join(out, name)
		browse(t, chromium, "--screenshot="+path, "--window-size=1280,2000", url)
		if st, err := os.Stat(path); err != nil || st.Size() < 10_000 {
			t.Errorf("screenshot %s: %v (a blank page is tiny)", path, err)
		}
	}
	t.Logf("report and screenshots in %s", out)
}

func ensureChromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skip("chromium is not installed and installing it needs root: run reports/testdata/install-chromium.sh as root")
	}
	t.Log("chromium missing: running reports/testdata/install-chromium.sh (apt-get install chromium)")
	cmd := exec.Command("../../testdata/install-chromium.sh")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing chromium: %v\n%s", err, b)
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium still missing after install: %v", err)
	}
	return p
}

// artifactDir is _output/reports-browser at the repository root, where CI
// collects artifacts; REPORTS_ARTIFACTS overrides it.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REPORTS_ARTIFACTS")
	if dir == "" {
		root, err := filepath.Abs("../../..")
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "_output", "reports-browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// browse runs headless Chromium once. As root it runs in a fresh network
// namespace (unshare --net), so "offline" is enforced, not just asked for.
func browse(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append([]string{chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}, args...)
	if os.Geteuid() == 0 {
		if unshare, err := exec.LookPath("unshare"); err == nil {
			argv = append([]string{unshare, "--net"}, argv...)
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return stdout.String()
}

func elements(n *xhtml.Node, tag, class string) []*xhtml.Node {
	var out []*xhtml.Node
	var walk func(*xhtml.Node)
	walk = func(n *xhtml.Node) {
		if n.Type == xhtml.ElementNode && n.Data == tag {
			for _, a := range n.Attr {
				if a.Key == "class" && strings.Contains(" "+a.Val+" ", " "+class+" ") {
					out = append(out, n)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func textOf(n *xhtml.Node) string {
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
