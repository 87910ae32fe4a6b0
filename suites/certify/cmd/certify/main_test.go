package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/reports/bundle"
)

// root is the repository root, from this package.
var root = filepath.Join("..", "..", "..", "..")

var product = map[string]string{
	"PRODUCT_VENDOR": "Example Networks", "PRODUCT_NAME": "fastproxy", "PRODUCT_VERSION": "2.1.0",
	"PRODUCT_WEBSITE_URL": "https://example.com/fastproxy", "PRODUCT_DOCUMENTATION_URL": "https://example.com/docs",
	"PRODUCT_TYPE": "distribution", "PRODUCT_DESCRIPTION": "A kube-proxy replacement.",
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// fakeE2E stands in for make e2e's runner: it logs that it ran and leaves
// a recorded run (the reports' fixture: three modes, two failed specs)
// in --run-dir, as the runner does.
const fakeE2E = `#!/bin/sh
echo ran >> %[1]s/e2e-ran
while [ $# -gt 0 ]; do [ "$1" = --run-dir ] && dir=$2; shift; done
mkdir -p "$dir" && cp -r %[2]s/. "$dir"/
exit 1
`

// fakeRunner writes a stand-in runner that copies fixture into its
// --run-dir and exits with status.
func fakeRunner(t *testing.T, dir, name, fixture string, status int) string {
	t.Helper()
	abs, err := filepath.Abs(fixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	script := strings.NewReplacer("%[1]s", dir, "%[2]s", abs, "exit 1", fmt.Sprintf("exit %d", status)).Replace(fakeE2E)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// tools builds the report command and writes the fake runner.
func tools(t *testing.T) (dir, e2e, report string) {
	t.Helper()
	dir = t.TempDir()
	report = filepath.Join(dir, "report")
	build := exec.Command("go", "build", "-o", report, "./reports/cmd/report")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build report: %v\n%s", err, out)
	}
	return dir, fakeRunner(t, dir, "e2e", filepath.Join(root, "reports", "testdata", "runs", "before"), 1), report
}

func TestCertifyWritesABundleThatVerifiesAndSaysUpstreamDidNotRunOnLocal(t *testing.T) {
	dir, e2e, report := tools(t)
	runDir := filepath.Join(dir, "run")
	var out strings.Builder
	status := Main([]string{"--e2e", e2e, "--report", report, "--run-dir", runDir, "--mode", "all"}, lookup(product), &out)
	if status != Failed {
		t.Fatalf("certify of a run with failed specs: status %d, want %d (bundle written, failures recorded)\n%s", status, Failed, out.String())
	}
	for _, b := range []string{filepath.Join(runDir, BundleDir), filepath.Join(runDir, TarballFile)} {
		v, err := bundle.Verify(b)
		if err != nil {
			t.Fatalf("the bundle %s does not verify: %v", b, err)
		}
		if v.Conformance != NoUpstreamOnLocal {
			t.Errorf("the local bundle says of upstream's specs %q", v.Conformance)
		}
	}
	p, err := os.ReadFile(filepath.Join(runDir, BundleDir, bundle.ProductFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`vendor: "Example Networks"`, `documentation_url: "https://example.com/docs"`, `conformance: "not run: PROVIDER=local has no kubelet`} {
		if !strings.Contains(string(p), want) {
			t.Errorf("PRODUCT.yaml lacks %s:\n%s", want, p)
		}
	}
	if !strings.Contains(out.String(), "upstream conformance: not run: PROVIDER=local has no kubelet") {
		t.Errorf("certify did not say up front that upstream's specs do not run on local:\n%s", out.String())
	}
}

func TestBadParametersAreRefusedBeforeAnythingRuns(t *testing.T) {
	dir, e2e, report := tools(t)
	missing := map[string]string{}
	for k, v := range product {
		if k != "PRODUCT_TYPE" {
			missing[k] = v
		}
	}
	held := filepath.Join(dir, "held")
	os.MkdirAll(held, 0o755)
	os.WriteFile(filepath.Join(held, "run.json"), []byte(`{"modes":[]}`), 0o644)
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"a missing PRODUCT field", nil, missing, "PRODUCT.yaml field type is required: set PRODUCT_TYPE="},
		{"a mode that does not exist", []string{"--mode", "ebpf"}, product, `MODE="ebpf"`},
		{"a label filter Ginkgo refuses", []string{"--label", "a &&"}, product, `LABEL="a &&"`},
		{"a run directory holding a run", []string{"--run-dir", held}, product, "already holds a run"},
		{"a kubelet provider without make conformance's runner", []string{"--provider", "kind", "--conformance", filepath.Join(dir, "none")}, product,
			"PROVIDER=kind: upstream's conformance specs need make conformance's runner"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			args := append([]string{"--e2e", e2e, "--report", report, "--run-dir", filepath.Join(dir, "run-"+c.name)}, c.args...)
			if status := Main(args, lookup(c.env), &out); status != NotDone {
				t.Errorf("status %d, want %d", status, NotDone)
			}
			if !strings.Contains(out.String(), c.want) || !strings.Contains(out.String(), "nothing was run") {
				t.Errorf("output lacks %q:\n%s", c.want, out.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "e2e-ran")); err == nil {
				t.Error("the suite ran")
			}
		})
	}
}

func TestCertifyOnAKubeletProviderRunsBothAndBundlesThemAsOne(t *testing.T) {
	dir, e2e, report := tools(t)
	conformance := fakeRunner(t, dir, "conformance", filepath.Join("..", "..", "testdata", "upstream"), 1)
	runDir := filepath.Join(dir, "run")
	var out strings.Builder
	status := Main([]string{"--provider", "kind", "--e2e", e2e, "--conformance", conformance, "--report", report, "--run-dir", runDir}, lookup(product), &out)
	if status != Failed {
		t.Fatalf("status %d, want %d (failures recorded)\n%s", status, Failed, out.String())
	}
	v, err := bundle.Verify(filepath.Join(runDir, TarballFile))
	if err != nil {
		t.Fatalf("the bundle does not verify: %v\n%s", err, out.String())
	}
	if v.Conformance != Upstream {
		t.Errorf("the bundle says of upstream's specs %q", v.Conformance)
	}
	junit, _ := os.ReadFile(filepath.Join(runDir, BundleDir, bundle.JUnitFile))
	log, _ := os.ReadFile(filepath.Join(runDir, BundleDir, bundle.LogFile))
	for _, c := range []struct{ file, text, want string }{
		{"junit_01.xml", string(junit), `[iptables] [sig-network] Services should serve a basic endpoint from pods [Conformance]`},
		{"junit_01.xml", string(junit), `[iptables] Hairpin lets a pod reach itself through its own Service`},
		{"e2e.log", string(log), "Running Suite: Kubernetes e2e suite - iptables"},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("%s lacks %q", c.file, c.want)
		}
	}
}
