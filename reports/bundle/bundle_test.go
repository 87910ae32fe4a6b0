package bundle

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/reports/run"
)

func TestBundleHoldsTheConformanceFilesVersionsAndAManifest(t *testing.T) {
	r, err := run.Load(filepath.Join("..", "testdata", "runs", "before"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(r, Contents{Report: []byte("<html></html>"), JUnit: []byte("<testsuites/>")})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := Write(path, files, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	got := untar(t, path)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "PRODUCT.yaml SHA256SUMS e2e.log junit_01.xml report.html run.json versions.json" {
		t.Errorf("bundle holds %v", names)
	}
	if !strings.Contains(got["e2e.log"], "make e2e MODE=all") {
		t.Errorf("e2e.log = %q, want the fixture's run log", got["e2e.log"])
	}
	var product map[string]any
	if err := yaml.Unmarshal([]byte(got["PRODUCT.yaml"]), &product); err != nil {
		t.Fatalf("PRODUCT.yaml is not YAML: %v\n%s", err, got["PRODUCT.yaml"])
	}
	tested, _ := product["tested"].(map[string]any)
	if product["name"] != "proxyproof" || product["vendor"] != "" || tested["kubernetes_version"] != "v1.34.4" || len(tested["verdicts"].([]any)) != 3 {
		t.Errorf("PRODUCT.yaml = %v", product)
	}
	if !strings.Contains(got["versions.json"], `"kubernetes": "v1.34.4"`) || !strings.Contains(got["versions.json"], `"mode": "ipvs (VM)"`) {
		t.Errorf("versions.json lacks the run's Kubernetes version or node modes:\n%s", got["versions.json"])
	}
}

func TestBundleWithoutARunLogLeavesItOut(t *testing.T) {
	r, err := run.Load(filepath.Join("..", "testdata", "runs", "empty"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(r, Contents{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Name == LogFile {
			t.Error("a run without run.log got an e2e.log in its bundle")
		}
	}
}

func TestWriteLeavesNoFileWhenItCannotFinish(t *testing.T) {
	dir := t.TempDir()
	err := Write(filepath.Join(dir, "no-such-dir", "bundle.tar.gz"), nil, time.Now())
	if err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d files behind", len(ents))
	}
}

func untar(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}
