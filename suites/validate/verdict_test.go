package validate

import (
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/census"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// phaseRun is a run of one mode whose specs have the given outcomes, with
// figures (name -> value) in that mode.
func phaseRun(dir, mode string, specs map[string]run.Outcome, figures map[string]float64) *run.Run {
	m := &run.Mode{Name: mode}
	for name, o := range specs {
		m.Specs = append(m.Specs, &run.Spec{Mode: mode, Name: name, Outcome: o, Reason: "because " + name})
		m.Counts.Total++
		switch o {
		case run.Passed:
			m.Counts.Passed++
		case run.Failed:
			m.Counts.Failed++
		case run.Skipped:
			m.Counts.Skipped++
		}
	}
	r := &run.Run{Dir: dir, Modes: []*run.Mode{m}}
	for name, v := range figures {
		r.Figures = append(r.Figures, &run.FigureSet{Name: name, Unit: "ms", ByMode: []run.ModeFigure{{Mode: mode, Figure: entry.Figure{Name: name, Title: name + " title", Unit: "ms", Values: []float64{v}}}}})
	}
	return r
}

const switchSpec = "switches every node"

func cleanSwitch() *run.Run {
	return phaseRun("/r/2", "iptables", map[string]run.Outcome{switchSpec: run.Passed}, map[string]float64{
		"migration window node-1": 900, "migration old mode gone node-1": 2500, "migration failed requests node-1": 0,
		"migration window node-2": 1100, "migration old mode gone node-2": 3100, "migration failed requests node-2": 0,
	})
}

func TestAValidateWithTheSameOutcomesAndACleanSwitchPasses(t *testing.T) {
	specs := map[string]run.Outcome{"clusterip": run.Passed, "nodeport": run.Passed, "hairpin": run.Failed}
	v := Judge(Phases{From: "iptables", To: "ipvs",
		Before: phaseRun("/r/1", "iptables", specs, map[string]float64{"refusal": 10}),
		Switch: cleanSwitch(),
		After:  phaseRun("/r/3", "ipvs", specs, map[string]float64{"refusal": 30}),
	})
	if v.Status != Pass || len(v.Regressions) != 0 {
		t.Fatalf("status %d, regressions %v; want a pass", v.Status, v.Regressions)
	}
	if strings.Join(v.Both, ",") != "clusterip,nodeport" || strings.Join(v.FailBoth, ",") != "hairpin" {
		t.Errorf("passing in both %v, failing in both %v", v.Both, v.FailBoth)
	}
	if len(v.Nodes) != 2 || v.Nodes[0].Node != "node-1" || v.Nodes[0].Window != 900 || v.Nodes[1].Window != 1100 || v.Nodes[0].Gone != 2500 || v.Nodes[1].Gone != 3100 {
		t.Errorf("nodes %+v: want node-1 900 ms to serve, 2500 ms to lose the old mode; node-2 1100 ms, 3100 ms", v.Nodes)
	}
	if len(v.Moves) != 1 || !v.Moves[0].Moved || v.Moves[0].B != 30 {
		t.Errorf("figure moves %+v: want refusal 10 -> 30, moved", v.Moves)
	}
}

func TestASpecPassingInFromAndFailingInToIsARegression(t *testing.T) {
	v := Judge(Phases{From: "iptables", To: "nftables",
		Before: phaseRun("/r/1", "iptables", map[string]run.Outcome{"affinity": run.Passed, "udp": run.Passed}, nil),
		Switch: cleanSwitch(),
		After:  phaseRun("/r/3", "nftables", map[string]run.Outcome{"affinity": run.Failed, "udp": run.Passed}, nil),
	})
	if v.Status != Regression || len(v.Regressions) != 1 || !strings.Contains(v.Regressions[0], `"affinity"`) {
		t.Fatalf("status %d, regressions %v; want one naming affinity", v.Status, v.Regressions)
	}
}

func TestFailedRequestsDuringTheSwitchAreARegressionNamingTheNode(t *testing.T) {
	sw := phaseRun("/r/2", "iptables", map[string]run.Outcome{switchSpec: run.Failed}, map[string]float64{
		"migration window node-1": 900, "migration failed requests node-1": 0,
		"migration window node-2": 2500, "migration failed requests node-2": 7,
	})
	specs := map[string]run.Outcome{"clusterip": run.Passed}
	v := Judge(Phases{From: "ipvs", To: "iptables", Before: phaseRun("/r/1", "ipvs", specs, nil), Switch: retag(sw, "ipvs"), After: phaseRun("/r/3", "iptables", specs, nil)})
	if v.Status != Regression {
		t.Fatalf("status %d; want a regression", v.Status)
	}
	joined := strings.Join(v.Regressions, "\n")
	if !strings.Contains(joined, "node-2") || strings.Contains(joined, "node-1") || !strings.Contains(joined, switchSpec) {
		t.Errorf("regressions %q: want the failed switch spec and node-2, not node-1", joined)
	}
}

// retag moves a one-mode run to mode.
func retag(r *run.Run, mode string) *run.Run {
	r.Modes[0].Name = mode
	for _, s := range r.Figures {
		s.ByMode[0].Mode = mode
	}
	return r
}

func TestAPhaseThatLeftNoRunOrRanNothingCouldNotBeJudged(t *testing.T) {
	specs := map[string]run.Outcome{"clusterip": run.Passed}
	skipped := phaseRun("/r/2", "iptables", map[string]run.Outcome{switchSpec: run.Skipped}, nil)
	for name, p := range map[string]Phases{
		"no run after the switch": {From: "iptables", To: "nftables", Before: phaseRun("/r/1", "iptables", specs, nil), Switch: cleanSwitch()},
		"the switch was skipped":  {From: "iptables", To: "nftables", Before: phaseRun("/r/1", "iptables", specs, nil), Switch: skipped, After: phaseRun("/r/3", "nftables", specs, nil)},
	} {
		t.Run(name, func(t *testing.T) {
			v := Judge(p)
			if v.Status != NotRun || len(v.Problems) == 0 {
				t.Fatalf("status %d problems %v; want could not run", v.Status, v.Problems)
			}
		})
	}
}

func TestTheReportSaysTheVerdictAndEachNodesSwitch(t *testing.T) {
	specs := map[string]run.Outcome{"clusterip": run.Passed}
	p := Phases{From: "iptables", To: "nftables", Before: phaseRun("/r/1", "iptables", specs, nil), Switch: cleanSwitch(), After: phaseRun("/r/3", "nftables", specs, nil)}
	var b strings.Builder
	if err := Judge(p).WriteMarkdown(&b, p, "make validate FROM=iptables TO=nftables"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PASS: nothing regressed", "| node-1 | 900 | 2500 | 0 |", "| node-2 | 1100 | 3100 | 0 |", "Passing in both modes (1)", "- clusterip"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestASwitchWhoseClientLoadBrokeCouldNotBeJudgedNotARegression(t *testing.T) {
	specs := map[string]run.Outcome{"clusterip": run.Passed}
	sw := cleanSwitch()
	sw.Modes[0].Specs[0].Outcome = run.Failed
	sw.Modes[0].Specs[0].Reason = batch.LoadFailed + ": exec into node-2: context deadline exceeded"
	sw.Modes[0].Counts.Passed, sw.Modes[0].Counts.Failed = 0, 1
	v := Judge(Phases{From: "iptables", To: "ipvs", Before: phaseRun("/r/1", "iptables", specs, nil), Switch: sw, After: phaseRun("/r/3", "ipvs", specs, nil)})
	if v.Status != NotRun || len(v.Problems) != 1 || !strings.Contains(v.Problems[0], "exec into node-2") {
		t.Errorf("status %d problems %q regressions %q; want could not run (2) naming the broken load", v.Status, v.Problems, v.Regressions)
	}
	sw.Modes[0].Specs[0].Reason = "node node-2: the proxier never served in ipvs"
	if v := Judge(Phases{From: "iptables", To: "ipvs", Before: phaseRun("/r/1", "iptables", specs, nil), Switch: sw, After: phaseRun("/r/3", "ipvs", specs, nil)}); v.Status != Regression {
		t.Errorf("a switch spec failing for the proxier: status %d, want regression (1)", v.Status)
	}
}

func TestOldModeStateLeftAfterTheSwitchIsARegressionNamingTheNode(t *testing.T) {
	specs := map[string]run.Outcome{"clusterip": run.Passed}
	leftover := []census.Census{{When: census.End, Nodes: []census.Node{
		{Name: "node-1", Expected: "nftables", Declared: "nftables", Carried: "nftables", Leftovers: []string{"iptables"}, Problems: []string{"leftover iptables state: KUBE-SERVICES in nat"}},
		{Name: "node-2", Expected: "nftables", Declared: "nftables", Carried: "nftables"},
	}}}
	after := phaseRun("/r/3", "nftables", specs, nil)
	after.Modes[0].Meta.Census = leftover
	v := Judge(Phases{From: "iptables", To: "nftables", Before: phaseRun("/r/1", "iptables", specs, nil), Switch: cleanSwitch(), After: after})
	if v.Status != Regression || len(v.Regressions) != 1 || !strings.Contains(v.Regressions[0], "suite in nftables: mode census at the end: node node-1: leftover iptables state") {
		t.Fatalf("status %d, regressions %q (problems %q): want the leftover on node-1 as the one regression", v.Status, v.Regressions, v.Problems)
	}

	// The same census before the switch: the cluster was not clean in
	// From, so the switch cannot be judged.
	before := phaseRun("/r/1", "iptables", specs, nil)
	before.Modes[0].Meta.Census = leftover
	v = Judge(Phases{From: "iptables", To: "nftables", Before: before, Switch: cleanSwitch(), After: phaseRun("/r/3", "nftables", specs, nil)})
	if v.Status != NotRun || len(v.Problems) != 1 || !strings.HasPrefix(v.Problems[0], "suite in iptables: mode census at the end: node node-1") {
		t.Fatalf("status %d, problems %q: want could not run, naming node-1", v.Status, v.Problems)
	}
}
