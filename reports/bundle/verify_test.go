package bundle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/reports/html"
	"github.com/proxyproof/proxyproof/reports/junit"
	"github.com/proxyproof/proxyproof/reports/run"
)

var vendor = ProductInfo{
	Vendor: "Example Networks", Name: "fastproxy", Version: "2.1.0", WebsiteURL: "https://example.com/fastproxy",
	DocumentationURL: "https://example.com/fastproxy/docs", Type: "distribution", Description: "A kube-proxy replacement.",
}

// certBundle writes the certification bundle of a fixture run (it has a
// failed spec, skips and three modes) as a directory and returns it with
// its tarball.
func certBundle(t *testing.T, fixture string) (dir, tarball string) {
	t.Helper()
	files := renderFiles(t, fixture, Contents{Product: vendor, Conformance: "ran: e2e.test v1.34.4"})
	out := t.TempDir()
	dir, tarball = filepath.Join(out, "bundle"), filepath.Join(out, "bundle.tar.gz")
	if err := WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
	if err := Write(tarball, files, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	return dir, tarball
}

// renderFiles are the bundle's files of a fixture run, its report and
// JUnit rendered by the real writers.
func renderFiles(t *testing.T, fixture string, c Contents) []File {
	t.Helper()
	if !filepath.IsAbs(fixture) {
		fixture = filepath.Join("..", "testdata", "runs", fixture)
	}
	r, err := run.Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var page, xml bytes.Buffer
	if err := html.Render(&page, r); err != nil {
		t.Fatal(err)
	}
	if err := junit.Write(&xml, junit.FromRun(r)); err != nil {
		t.Fatal(err)
	}
	c.Report, c.JUnit = page.Bytes(), xml.Bytes()
	files, err := Files(r, c)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func mismatch(t *testing.T, path string) *Mismatch {
	t.Helper()
	_, err := Verify(path)
	var m *Mismatch
	if !errors.As(err, &m) {
		t.Fatalf("Verify(%s) = %v, want a mismatch", path, err)
	}
	return m
}

func TestABundleAsWrittenVerifiesAsDirectoryAndTarball(t *testing.T) {
	dir, tarball := certBundle(t, "before")
	for _, path := range []string{dir, tarball} {
		v, err := Verify(path)
		if err != nil {
			t.Fatalf("Verify(%s): %v", path, err)
		}
		if v.Files != 7 || v.Specs == 0 || strings.Join(v.Modes, ",") != "iptables,nftables,ipvs" || v.Conformance != "ran: e2e.test v1.34.4" {
			t.Errorf("Verify(%s) = %+v", path, v)
		}
	}
}

func TestOneChangedByteInAnyFileFailsNamingThatFile(t *testing.T) {
	dir, tarball := certBundle(t, "before")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Run(e.Name(), func(t *testing.T) {
			copyDir := filepath.Join(t.TempDir(), "bundle")
			if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			flipByte(t, filepath.Join(copyDir, e.Name()))
			if m := mismatch(t, copyDir); m.File != e.Name() {
				t.Errorf("a changed byte in %s: verify names %q (%v)", e.Name(), m.File, m)
			}
		})
	}
	flipByte(t, tarball)
	if m := mismatch(t, tarball); m.File != "bundle.tar.gz" {
		t.Errorf("a changed byte in the tarball: verify names %q (%v)", m.File, m)
	}
}

// flipByte changes the middle byte of a file to another printable one.
func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := len(b) / 2
	if b[i] == 'x' {
		b[i] = 'y'
	} else {
		b[i] = 'x'
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAFileAddedOrRemovedIsNamed(t *testing.T) {
	dir, _ := certBundle(t, "before")
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("later"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := mismatch(t, dir); m.File != "notes.txt" || !strings.Contains(m.Msg, "not listed") {
		t.Errorf("an added file: %v", m)
	}
	os.Remove(filepath.Join(dir, "notes.txt"))
	os.Remove(filepath.Join(dir, "e2e.log"))
	if m := mismatch(t, dir); m.File != "e2e.log" || !strings.Contains(m.Msg, "not in the bundle") {
		t.Errorf("a removed file: %v", m)
	}
}

// edit replaces old with new in one file of the bundle and rewrites the
// manifest, as someone would who meant the change to pass: the claims
// must then be caught by what they say.
func edit(t *testing.T, dir, name, old, new string) {
	t.Helper()
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q:\n%s", name, old, b)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ParseManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	var files []File
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, File{Name: e.Name, Data: data})
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), Manifest(files).Data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAnEditedClaimIsNamedEvenWithTheManifestRewritten(t *testing.T) {
	for _, c := range []struct {
		name, file, old, new string
		wantFile, wantMsg    string
	}{
		{"a Kubernetes version in versions.json", "versions.json", `"kubernetes": "v1.34.4"`, `"kubernetes": "v1.35.0"`,
			"versions.json", `claims kubernetes "v1.35.0", run.json records "v1.34.4"`},
		{"a node's mode in versions.json", "versions.json", `"mode": "ipvs (VM)"`, `"mode": "ipvs"`,
			"versions.json", `mode ipvs: node node-1 runs "ipvs"`},
		{"a mode in PRODUCT.yaml", "PRODUCT.yaml", `modes: ["iptables", "nftables", "ipvs"]`, `modes: ["iptables", "nftables"]`,
			"PRODUCT.yaml", "tested.modes"},
		{"the Kubernetes version in PRODUCT.yaml", "PRODUCT.yaml", `kubernetes_version: "v1.34.4"`, `kubernetes_version: "v1.33.0"`,
			"PRODUCT.yaml", `tested.kubernetes_version "v1.33.0"`},
		{"a verdict in PRODUCT.yaml", "PRODUCT.yaml", `"nftables: `, `"nftables: 1`,
			"PRODUCT.yaml", "claims verdict"},
		{"a required vendor field emptied", "PRODUCT.yaml", `vendor: "Example Networks"`, `vendor: ""`,
			"PRODUCT.yaml", "vendor is required"},
		{"a skipped spec made a pass in the JUnit", "junit_01.xml", `<skipped message="needs a second node with the ip_vs module; this VM runs one node"></skipped>`, ``,
			"junit_01.xml", `spec [ipvs] externalTrafficPolicy Local preserves the client source IP passed, report.html shows it skipped`},
		{"a spec renamed in the JUnit", "junit_01.xml", `name="[ipvs] externalTrafficPolicy Local`, `name="[ipvs] externalTrafficPolicy Cluster`,
			"junit_01.xml", `spec [ipvs] externalTrafficPolicy Cluster preserves the client source IP (skipped) is not in report.html`},
		{"run.json's census itself", "run.json", `"node-2": "nftables"`, `"node-2": "iptables"`,
			"versions.json", `mode nftables: node node-2 runs "nftables", run.json records "iptables"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := certBundle(t, "before")
			edit(t, dir, c.file, c.old, c.new)
			m := mismatch(t, dir)
			if m.File != c.wantFile || !strings.Contains(m.Msg, c.wantMsg) {
				t.Errorf("verify says %q, want %s: ...%s...", m, c.wantFile, c.wantMsg)
			}
		})
	}
}

// censusRun is the fixture run with a mode census of its iptables
// cluster, as make e2e records one at the end of a mode.
func censusRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "census")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testdata", "runs", "before"))); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "run.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	census := `"nodes": {"node-1": "iptables", "node-2": "iptables", "node-3": "iptables"}, "census": [{"when": "end", "at": "2026-06-01T10:20:00Z", "nodes": [
		{"name": "node-1", "expected": "iptables", "kernel": "6.18.0-proxyproof", "declared": "iptables", "carried": "iptables"},
		{"name": "node-2", "expected": "iptables", "kernel": "6.18.0-proxyproof", "declared": "iptables", "carried": "iptables", "leftovers": ["nftables"]},
		{"name": "node-3", "expected": "iptables", "kernel": "6.18.0-proxyproof", "declared": "iptables", "carried": "iptables"}]}]`
	b = bytes.Replace(b, []byte(`"nodes": {"node-1": "iptables", "node-2": "iptables", "node-3": "iptables"}`), []byte(census), 1)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestClaimsOfTheModeCensusAreCheckedNodeByNode(t *testing.T) {
	for _, c := range []struct {
		name, file, old, new, want string
	}{
		{"a node's kernel", "versions.json", `"kernel": "6.18.0-proxyproof"`, `"kernel": "6.1.0-28-amd64"`,
			`versions.json: claims mode iptables: node node-1 kernel "6.1.0-28-amd64", run.json records "6.18.0-proxyproof"`},
		{"leftovers left out", "versions.json", `"leftovers": [
            "nftables"
          ]`, `"leftovers": []`, `versions.json: claims mode iptables: node node-2 leftovers "", run.json records "nftables"`},
		{"the census itself", "run.json", `"declared": "iptables", "carried": "iptables", "leftovers"`, `"declared": "nftables", "carried": "iptables", "leftovers"`,
			`versions.json: claims mode iptables: node node-2 declared mode "iptables", run.json records "nftables"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := certBundle(t, censusRun(t))
			if _, err := Verify(dir); err != nil {
				t.Fatalf("the bundle as written: %v", err)
			}
			edit(t, dir, c.file, c.old, c.new)
			if m := mismatch(t, dir); m.Error() != c.want {
				t.Errorf("verify says\n%s\nwant\n%s", m, c.want)
			}
		})
	}
}

func TestMakeReportsTemplateBundleVerifiesWithoutVendorFields(t *testing.T) {
	files := renderFiles(t, "before", Contents{})
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := Write(path, files, time.Now()); err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(path); err != nil || !strings.HasPrefix(v.Conformance, "not a certification run") {
		t.Errorf("Verify(make report's bundle) = %+v, %v", v, err)
	}
}

func TestNothingToVerifyIsBadInputNotAMismatch(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "report.html")
	if err := os.WriteFile(plain, []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "no-such-bundle"), plain} {
		_, err := Verify(path)
		var bad *BadInput
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), "BUNDLE="+path) {
			t.Errorf("Verify(%s) = %v, want bad input naming BUNDLE", path, err)
		}
	}
	if m := mismatch(t, dir); m.File != ManifestFile {
		t.Errorf("a directory without a manifest: %v", m)
	}
}
