package gate

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/reports/run"
)

func loadRun(t *testing.T, name string) *run.Run {
	t.Helper()
	r, err := run.Load(filepath.Join("..", "..", "reports", "testdata", "runs", name))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testThresholds gates change p50 and first sync at +50% and rules at +5%.
func testThresholds(t *testing.T) Thresholds {
	t.Helper()
	th, err := ParseThresholds([]byte("figures:\n  change p50: {growth: 0.5}\n  first sync: {growth: 0.5}\n  rules: {growth: 0.05}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// baselineOf is the run as written to a baseline file and read back, the
// way make gate-baseline and make gate see it.
func baselineOf(t *testing.T, r *run.Run) *run.Run {
	t.Helper()
	path := filepath.Join(t.TempDir(), "baseline.json")
	if err := FromRun(r).Write(path); err != nil {
		t.Fatal(err)
	}
	b, err := LoadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestARunPassesAgainstItsOwnBaseline(t *testing.T) {
	r := loadRun(t, "before")
	for name, base := range map[string]*run.Run{"baseline file": baselineOf(t, r), "run directory": loadRun(t, "before")} {
		v := Judge(base, r, testThresholds(t))
		if v.Status != Pass {
			t.Fatalf("%s: status %d (%v), want pass", name, v.Status, v.Problems)
		}
		// 2 scales x 2 cases x 3 gated figures, less iptables 10000x10 whose
		// upstream row did not finish (no ratio there, in either run).
		if len(v.Figures) != 9 || v.SpecsCompared == 0 {
			t.Errorf("%s: %d figures and %d specs compared, want 9 and some", name, len(v.Figures), v.SpecsCompared)
		}
	}
}

func TestASpecThatPassedAndFailsNowIsARegressionNamedInTheSummary(t *testing.T) {
	before, after := loadRun(t, "before"), loadRun(t, "after")
	after.Bench = before.Bench
	v := Judge(baselineOf(t, before), after, testThresholds(t))
	if v.Status != Regression || len(v.Specs) != 1 {
		t.Fatalf("status %d specs %+v problems %v, want one regression", v.Status, v.Specs, v.Problems)
	}
	var md bytes.Buffer
	if err := v.WriteSummary(&md, Context{RunDir: "/runs/x-gate", Baseline: "gate/baseline.json"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAIL: 1 regression", "| iptables |", v.Specs[0].Name, "connection refused", "`report.html` in the run directory `x-gate`"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, md.String())
		}
	}
	// The nftables spec that failed before and passes now is no regression.
	if f := v.Specs[0]; f.Pair.B != "iptables" {
		t.Errorf("regression %+v, want the iptables spec only", f)
	}
}

func scaleRow(b *run.Bench, mode, proxier string, services int, f func(*run.BenchRow)) {
	for i := range b.Rows {
		r := &b.Rows[i]
		if r.Mode == mode && r.Proxier == proxier && r.Services == services {
			f(r)
		}
	}
}

func TestFigureRatiosWithinTheNoiseAllowancePass(t *testing.T) {
	tests := []struct {
		name     string
		change   func(b *run.Bench)
		want     int
		wantText string
	}{
		{"ours 30% slower is within +50%", func(b *run.Bench) {
			scaleRow(b, "nftables", "ours", 2000, func(r *run.BenchRow) { r.ChangeP50Ms *= 1.3 })
		}, Pass, ""},
		{"ours 60% slower is beyond +50%", func(b *run.Bench) {
			scaleRow(b, "nftables", "ours", 2000, func(r *run.BenchRow) { r.ChangeP50Ms *= 1.6 })
		}, Regression, "| **regressed** | 2000x5 | nftables | change p50 | 0.018 (6.20 ms / 336 ms) | 0.03 (9.92 ms / 336 ms) | <= 0.028 (+50%) |"},
		{"a slower machine slows both: the ratio holds", func(b *run.Bench) {
			for i := range b.Rows {
				b.Rows[i].ChangeP50Ms *= 3
				b.Rows[i].FirstSyncS *= 3
			}
		}, Pass, ""},
		{"ours not finishing where it did is a regression", func(b *run.Bench) {
			scaleRow(b, "nftables", "ours", 10000, func(r *run.BenchRow) {
				*r = run.BenchRow{Mode: r.Mode, Proxier: r.Proxier, Services: r.Services, Endpoints: r.Endpoints, DidNotFinish: true, Reason: "no complete ruleset after 300s"}
			})
		}, Regression, "ours did not finish: no complete ruleset after 300s"},
		{"one more rule than +5% is a regression", func(b *run.Bench) {
			scaleRow(b, "iptables", "ours", 2000, func(r *run.BenchRow) { r.Rules = r.Rules * 106 / 100 })
		}, Regression, "| **regressed** | 2000x5 | iptables/nft | rules |"},
		{"an ungated figure moves freely", func(b *run.Bench) {
			scaleRow(b, "iptables", "ours", 2000, func(r *run.BenchRow) { r.RSSMB *= 10 })
		}, Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := baselineOf(t, loadRun(t, "before"))
			now := loadRun(t, "before")
			tt.change(now.Bench)
			v := Judge(base, now, testThresholds(t))
			if v.Status != tt.want {
				t.Fatalf("status %d, want %d (problems %v)", v.Status, tt.want, v.Problems)
			}
			var md bytes.Buffer
			_ = v.WriteSummary(&md, Context{RunDir: "r"})
			if tt.wantText != "" && !strings.Contains(md.String(), tt.wantText) {
				t.Errorf("summary lacks %q:\n%s", tt.wantText, md.String())
			}
		})
	}
}

func TestARunThatCannotBeJudgedIsStatus2NotARegression(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(base, now *run.Run)
		want   int
		why    string
	}{
		{"the cluster did not come up", func(_, now *run.Run) {
			setupFailed(now, "cluster e2ei1 (2 iptables nodes): control plane: etcd: exit status 1")
		}, NotRun, "mode iptables: the cluster did not come up"},
		{"the proxier under test never became healthy", func(_, now *run.Run) {
			setupFailed(now, "cluster e2ei1: node e2ei1-1: proxier (mode iptables) not healthy: context deadline exceeded")
		}, Regression, ""},
		{"the baseline has no bench", func(base, _ *run.Run) { base.Bench = nil }, NotRun, "has no bench figures"},
		{"the run has no bench", func(_, now *run.Run) { now.Bench = nil }, NotRun, "the bench did not run"},
		{"the bench ran at another scale", func(_, now *run.Run) {
			for i := range now.Bench.Rows {
				now.Bench.Rows[i].Services = 200
			}
		}, NotRun, "no gated figure was measured in both"},
		{"another mode than the baseline's", func(base, now *run.Run) {
			base.Modes = base.Modes[:1]
			now.Modes = now.Modes[1:2]
		}, NotRun, "the baseline has mode iptables and this run nftables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, now := loadRun(t, "before"), loadRun(t, "before")
			tt.mutate(base, now)
			v := Judge(base, now, testThresholds(t))
			if v.Status != tt.want || !strings.Contains(strings.Join(v.Problems, "\n"), tt.why) {
				t.Fatalf("status %d problems %v, want %d and %q", v.Status, v.Problems, tt.want, tt.why)
			}
		})
	}
}

// setupFailed makes the iptables mode of r a BeforeSuite failure.
func setupFailed(r *run.Run, msg string) {
	m := r.Modes[0]
	m.Specs = []*run.Spec{{Mode: m.Name, Name: "[BeforeSuite]", Feature: "suite setup", Suite: true, Outcome: run.Failed, Reason: msg}}
	m.Counts = run.Counts{SetupFailed: 1}
}
