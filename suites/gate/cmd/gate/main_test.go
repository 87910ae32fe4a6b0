package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/gate"
)

const testdata = "../../../../reports/testdata/runs"

// copyRun copies a fixture run directory into a fresh temp directory.
func copyRun(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("cp", "-r", filepath.Join(testdata, name), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func writeThresholds(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "thresholds.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func gateMain(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := Main(args, &out, &errs)
	return code, out.String() + errs.String()
}

func TestCheckExitsZeroOnPassAndOneOnARegressionWithTheSummary(t *testing.T) {
	th := writeThresholds(t, "figures:\n  change p50: {growth: 0.5}\n")
	before := copyRun(t, "before")
	baseline := filepath.Join(t.TempDir(), "baseline.json")
	if code, out := gateMain(t, "baseline", "--run", before, "--out", baseline); code != 0 {
		t.Fatalf("baseline: exit %d: %s", code, out)
	}
	if code, out := gateMain(t, "check", "--run", before, "--baseline", baseline, "--thresholds", th); code != gate.Pass {
		t.Fatalf("a run against its own baseline: exit %d: %s", code, out)
	}

	after := copyRun(t, "after")
	bench, err := os.ReadFile(filepath.Join(before, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(after, "bench.json"), bench, 0o644); err != nil {
		t.Fatal(err)
	}
	stepSummary := filepath.Join(t.TempDir(), "step-summary.md")
	stepOutput := filepath.Join(t.TempDir(), "output")
	t.Setenv("GITHUB_STEP_SUMMARY", stepSummary)
	t.Setenv("GITHUB_OUTPUT", stepOutput)
	code, out := gateMain(t, "check", "--run", after, "--baseline", baseline, "--thresholds", th)
	if code != gate.Regression {
		t.Fatalf("a spec that passed and fails now: exit %d, want 1: %s", code, out)
	}
	for _, path := range []string{filepath.Join(after, gate.SummaryFile), stepSummary} {
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), "ClusterIP serves a multi-port Service with a named targetPort") || !strings.Contains(string(b), "FAIL: 1 regression") {
			t.Errorf("%s does not name the spec that failed (%v):\n%s", path, err, b)
		}
	}
	if b, _ := os.ReadFile(stepOutput); string(b) != "status=1\n" {
		t.Errorf("GITHUB_OUTPUT %q, want status=1", b)
	}
}

func TestBadInputIsExitTwoAndCreatesNothing(t *testing.T) {
	good := writeThresholds(t, "figures:\n  change p50: {growth: 0.5}\n")
	baseline := filepath.Join(t.TempDir(), "baseline.json")
	if code, out := gateMain(t, "baseline", "--run", copyRun(t, "before"), "--out", baseline); code != 0 {
		t.Fatal(out)
	}
	used := copyRun(t, "before")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown mode", []string{"--mode", "ebpf"}, `MODE="ebpf": want iptables, nftables, ipvs or all`},
		{"a label filter that does not parse", []string{"--label", "feature:clusterip &&"}, `LABEL="feature:clusterip &&"`},
		{"a bad scale", []string{"--scale", "200"}, `SCALE="200"`},
		{"a proxier that is not there", []string{"--proxier", "/nonexistent/proxier"}, "PROXIER=/nonexistent/proxier"},
		{"too few changes", []string{"--changes", "2"}, "CHANGES=2: want 5 or more"},
		{"a missing baseline", []string{"--baseline", "/nonexistent/baseline.json"}, "baseline /nonexistent/baseline.json: stat /nonexistent/baseline.json: no such file or directory (write one with make gate-baseline"},
		{"thresholds naming a figure that does not exist", []string{"--thresholds", writeThresholds(t, "figures:\n  change p50: {growth: 0.5}\n  latency: {growth: 1}\n")}, `thresholds.yaml:3: figure "latency" does not exist`},
		{"a run directory that holds a run", []string{"--run-dir", used}, "already holds a run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runDir := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", "--e2e", "/bin/true", "--bench", "/bin/true", "--ours", "/bin/true",
				"--baseline", baseline, "--thresholds", good, "--run-dir", runDir}, tt.args...)
			code, out := gateMain(t, args...)
			if code != gate.NotRun || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 2 and %q", code, out, tt.want)
			}
			if _, err := os.Stat(runDir); err == nil {
				t.Errorf("a refused run created %s", runDir)
			}
		})
	}
}

func TestABaselineFromABadRunOverwritesNothing(t *testing.T) {
	baseline := filepath.Join(t.TempDir(), "baseline.json")
	if err := os.WriteFile(baseline, []byte("reviewed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for run, want := range map[string]string{"corrupt": "ginkgo.json", "after": "has no bench.json", "benchonly": "no spec passed"} {
		code, out := gateMain(t, "baseline", "--run", copyRun(t, run), "--out", baseline)
		if code != gate.NotRun || !strings.Contains(out, want) {
			t.Errorf("baseline from %s: exit %d %s, want 2 and %q", run, code, out, want)
		}
	}
	// A run whose upstream rows all did not finish has no ratio to gate.
	stalled := copyRun(t, "before")
	b, err := run.LoadBench(stalled)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Rows {
		if b.Rows[i].Proxier == "upstream" {
			b.Rows[i] = run.BenchRow{Mode: b.Rows[i].Mode, Backend: b.Rows[i].Backend, Proxier: "upstream",
				Services: b.Rows[i].Services, Endpoints: b.Rows[i].Endpoints, DidNotFinish: true}
		}
	}
	data, _ := json.Marshal(b)
	if err := os.WriteFile(filepath.Join(stalled, run.BenchFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := gateMain(t, "baseline", "--run", stalled, "--out", baseline); code != gate.NotRun || !strings.Contains(out, "no figure of both ours and upstream") {
		t.Errorf("baseline from a run where upstream never finished: exit %d %s", code, out)
	}
	if b, _ := os.ReadFile(baseline); string(b) != "reviewed\n" {
		t.Errorf("the baseline was overwritten: %q", b)
	}
}
