package certify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/reports/bundle"
	"github.com/proxyproof/proxyproof/reports/html"
	"github.com/proxyproof/proxyproof/reports/junit"
	"github.com/proxyproof/proxyproof/reports/run"
)

func TestAMergedRunShowsUpstreamsSpecsBesideOursInOneVerifiedBundle(t *testing.T) {
	suite, err := filepath.Abs(filepath.Join("..", "..", "reports", "testdata", "runs", "before"))
	if err != nil {
		t.Fatal(err)
	}
	// As make conformance leaves it (suites/conformance/doc.go), in
	// iptables and nftables: one spec passed, one failed per mode.
	upstream, err := filepath.Abs(filepath.Join("testdata", "upstream"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Merge(dir, suite, upstream, "certify-x", "make certify"); err != nil {
		t.Fatal(err)
	}
	r, err := run.Load(dir)
	if err != nil {
		t.Fatalf("the merged run does not load: %v", err)
	}
	if got := fmt.Sprint(modeNames(r)); got != "[iptables nftables ipvs]" {
		t.Errorf("merged modes %s", got)
	}
	ipt := r.Mode("iptables")
	if ipt.Meta.Nodes["node-1"] != "iptables" || ipt.Meta.Nodes["conformance-iptables-worker"] != "iptables" {
		t.Errorf("iptables nodes %v: want both clusters' nodes", ipt.Meta.Nodes)
	}
	before, _ := run.Load(suite)
	if want := before.Mode("iptables").Counts.Total + 2; ipt.Counts.Total != want || ipt.Counts.Failed != before.Mode("iptables").Counts.Failed+1 {
		t.Errorf("iptables counts %+v, want our specs plus upstream's two (one failed)", ipt.Counts)
	}
	if ipvs := r.Mode("ipvs"); ipvs.Counts.Total != before.Mode("ipvs").Counts.Total {
		t.Errorf("ipvs, which upstream did not run, has %d specs, want ours alone", ipvs.Counts.Total)
	}

	var page, xml bytes.Buffer
	if err := html.Render(&page, r); err != nil {
		t.Fatal(err)
	}
	if err := junit.Write(&xml, junit.FromRun(r)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(xml.String(), `name="[nftables] [sig-network] Services should be able to change the type from ExternalName to ClusterIP [Conformance]"`) {
		t.Error("the merged JUnit lacks upstream's failed spec in nftables")
	}
	files, err := bundle.Files(r, bundle.Contents{Report: page.Bytes(), JUnit: xml.Bytes(), Conformance: "ran", Product: bundle.ProductInfo{
		Vendor: "Example", Name: "fastproxy", Version: "1", WebsiteURL: "https://example.com", DocumentationURL: "https://example.com/docs",
		Type: "distribution", Description: "A proxy.",
	}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := bundle.Write(out, files, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Verify(out); err != nil {
		t.Errorf("the merged run's bundle does not verify: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, run.LogFile))
	for _, want := range []string{"make e2e MODE=all", "upstream/nftables/e2e.log =====", "Running Suite: Kubernetes e2e suite - nftables", "conformance: runner log"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the merged run.log lacks %q:\n%s", want, log)
		}
	}
}

func modeNames(r *run.Run) []string {
	var out []string
	for _, m := range r.Modes {
		out = append(out, m.Name)
	}
	return out
}
