package run

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testdata = "../testdata/runs"

func TestLoadBuildsVerdictsMatrixFiguresAndDumps(t *testing.T) {
	r, err := Load(filepath.Join(testdata, "before"))
	if err != nil {
		t.Fatal(err)
	}
	var verdicts []string
	for _, m := range r.Modes {
		verdicts = append(verdicts, m.Counts.Verdict(m.Name))
	}
	want := []string{
		"iptables: 8/9 passed, 1 pending",
		"nftables: 7/9 passed, 1 failed, 1 pending",
		"ipvs: 6/9 passed, 1 failed, 1 skipped, 1 pending",
	}
	if strings.Join(verdicts, "\n") != strings.Join(want, "\n") {
		t.Errorf("verdicts:\n%s\nwant:\n%s", strings.Join(verdicts, "\n"), strings.Join(want, "\n"))
	}
	if len(r.Rows) != 9 || r.Features[0] != "Churn" || len(r.Features) != 6 {
		t.Errorf("matrix: %d rows, features %v; want 9 rows in 6 feature groups", len(r.Rows), r.Features)
	}
	var nodePort *Row
	for _, row := range r.Rows {
		if strings.HasPrefix(row.Name, "NodePort answers") {
			nodePort = row
		}
	}
	if nodePort == nil {
		t.Fatal("no NodePort row")
	}
	s := nodePort.Cells["nftables"]
	if s.Outcome != Failed || len(s.Dumps) != 1 || s.Dumps[0].Node != "node-2" || !strings.Contains(s.Dumps[0].Text, "table ip kube-proxy") {
		t.Errorf("nftables NodePort: outcome %s, dumps %+v; want failed with node-2's nft ruleset", s.Outcome, s.Dumps)
	}
	if nodePort.Cells["iptables"].Outcome != Passed {
		t.Errorf("iptables NodePort = %s, want passed", nodePort.Cells["iptables"].Outcome)
	}
	names := map[string]int{}
	for _, f := range r.Figures {
		names[f.Name] = len(f.ByMode)
	}
	if len(names) != 4 || names["endpoint-propagation"] != 3 {
		t.Errorf("figures %v, want 4 figures with endpoint-propagation in 3 modes", names)
	}
	if r.Bench == nil || len(r.Bench.Rows) != 8 || r.LogPath == "" {
		t.Errorf("bench %v, log %q; want 8 bench rows and the run log", r.Bench, r.LogPath)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings on a clean fixture: %v", r.Warnings)
	}
	if start, end, ok := r.Duration(); !ok || end-start != int64(16*60+12)*1e9 {
		t.Errorf("duration %v..%v (%v), want run.json's 16m12s", start, end, ok)
	}
}

func TestLoadAnEmptyRunSaysNoSpecsRan(t *testing.T) {
	r, err := Load(filepath.Join(testdata, "empty"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Modes) != 1 || len(r.Rows) != 0 || r.Modes[0].Counts.Verdict("iptables") != "iptables: no specs ran" {
		t.Errorf("empty run: %d modes, %d rows, verdict %q", len(r.Modes), len(r.Rows), r.Modes[0].Counts.Verdict("iptables"))
	}
	if c := r.Modes[0].Counts.Class(); c != "empty" {
		t.Errorf("an empty run's verdict class is %q, want empty: it must not look like a pass", c)
	}
}

func TestLoadARunWhoseFilterMatchedNothingShowsEverySpecSkipped(t *testing.T) {
	r, err := Load(filepath.Join(testdata, "filtered"))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Modes[0].Counts
	if got := c.Verdict("iptables"); got != "iptables: 0/9 passed, 8 skipped, 1 pending" || c.Class() != "empty" {
		t.Errorf("verdict %q class %q, want every spec skipped and an empty class", got, c.Class())
	}
	if s := r.Rows[0].Cells["iptables"]; s.Reason != "skipped by filter" {
		t.Errorf("reason %q, want skipped by filter", s.Reason)
	}
}

// copyRun copies a fixture run so a test can break it.
func copyRun(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.Walk(filepath.Join(testdata, name), func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(testdata, name), path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLoadFailsWholeWithAnErrorNamingTheFile(t *testing.T) {
	tests := []struct {
		name   string
		run    string
		break_ func(dir string) error
		want   []string
	}{
		{"a truncated Ginkgo report", "corrupt", func(string) error { return nil },
			[]string{"mode iptables", "corrupt/iptables/ginkgo.json", "invalid JSON at line"}},
		{"a missing run.json", "empty", func(d string) error { return os.Remove(filepath.Join(d, "run.json")) },
			[]string{"run.json", "missing"}},
		{"a run.json with a typo in a field", "empty", func(d string) error {
			return os.WriteFile(filepath.Join(d, "run.json"), []byte(`{"provder": "local", "modes": []}`), 0o644)
		}, []string{"run.json", `unknown field "provder"`}},
		{"a mode listed without its report", "empty", func(d string) error { return os.RemoveAll(filepath.Join(d, "iptables")) },
			[]string{"mode iptables", "iptables/ginkgo.json", "no such file"}},
		{"a bench.json that is not JSON", "empty", func(d string) error {
			return os.WriteFile(filepath.Join(d, "bench.json"), []byte("rows: []"), 0o644)
		}, []string{"bench.json", "invalid JSON"}},
		{"a mode name that is a path", "empty", func(d string) error {
			return os.WriteFile(filepath.Join(d, "run.json"), []byte(`{"modes": [{"name": "../etc"}]}`), 0o644)
		}, []string{"run.json", `"../etc" is not a directory name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyRun(t, tt.run)
			if err := tt.break_(dir); err != nil {
				t.Fatal(err)
			}
			r, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded with %d modes; want an error", len(r.Modes))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAMissingDumpIsAWarningNotAFailure(t *testing.T) {
	dir := copyRun(t, "before")
	if err := os.RemoveAll(filepath.Join(dir, "nftables", "dumps")); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "node-2.txt: missing") {
		t.Errorf("warnings %q, want one naming the missing node-2 dump", r.Warnings)
	}
}
