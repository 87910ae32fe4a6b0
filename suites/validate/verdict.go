package validate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// Exit statuses, as the gate's: CI acts on them.
const (
	Pass       = 0
	Regression = 1
	NotRun     = 2
)

// Phases are the three run directories of one make validate, loaded.
type Phases struct {
	From, To string
	// Before is the suite in From, Switch the live switch (run in From
	// and ending in To), After the suite in To. A nil phase did not
	// leave a run to read.
	Before, Switch, After *run.Run
}

// NodeSwitch is one node's switch as the migration spec recorded it.
type NodeSwitch struct {
	Node string
	// Window is restart -> serving in the new mode, in ms; Gone restart
	// -> the old mode's state gone from the node; Failed the requests
	// that failed while the node switched; Title says by class.
	Window, Gone, Failed float64
	Title                string
}

// Verdict is what make validate concludes.
type Verdict struct {
	Status int
	// Problems say why a phase could not be judged (Status NotRun).
	Problems []string
	// Regressions are what a user would notice after the switch: specs
	// passing in From that fail in To (or new in To and failing), failed
	// specs of the switch, requests failed during the switch.
	Regressions []string
	// Both are the specs that passed in both modes; FailBoth failed in
	// both (not regressions: the switch changes nothing there).
	Both, FailBoth []string
	// Flips are the specs whose outcome changed between the modes, Moves
	// the figures both modes have, moved ones first (reports/compare).
	Flips []compare.Flip
	Moves []compare.Move
	Nodes []NodeSwitch
}

// Judge compares the phases.
func Judge(p Phases) Verdict {
	var v Verdict
	for _, ph := range []struct {
		name string
		r    *run.Run
		mode string
	}{{"suite in " + p.From, p.Before, p.From}, {"switch " + p.From + " -> " + p.To, p.Switch, p.From}, {"suite in " + p.To, p.After, p.To}} {
		v.Problems = append(v.Problems, unjudgeable(ph.name, ph.r, ph.mode)...)
	}
	if len(v.Problems) > 0 {
		v.Status = NotRun
		return v
	}
	d, err := compare.Runs(p.Before, p.After, compare.Options{ModeA: p.From, ModeB: p.To})
	if err != nil {
		v.Problems = append(v.Problems, err.Error())
		v.Status = NotRun
		return v
	}
	v.Flips, v.Moves = d.Flips, d.Figures
	for _, f := range d.Flips {
		if f.To == run.Failed {
			v.Regressions = append(v.Regressions, fmt.Sprintf("suite in %s: %q %s in %s, fails in %s: %s", p.To, f.Name, outcomeText(f.From), p.From, p.To, f.Reason))
		}
	}
	v.Both, v.FailBoth = sameOutcome(p.Before.Mode(p.From), p.After.Mode(p.To))
	sw := p.Switch.Mode(p.From)
	for _, s := range sw.Specs {
		if s.Outcome == run.Failed && strings.Contains(s.Reason, batch.LoadFailed) {
			v.Problems = append(v.Problems, fmt.Sprintf("switch %s -> %s: %q: %s", p.From, p.To, s.Name, s.Reason))
			continue
		}
		if s.Outcome == run.Failed {
			v.Regressions = append(v.Regressions, fmt.Sprintf("switch %s -> %s: %q failed: %s", p.From, p.To, s.Name, s.Reason))
		}
	}
	v.Nodes = nodeSwitches(p.Switch, p.From)
	for _, n := range v.Nodes {
		if n.Failed > 0 {
			v.Regressions = append(v.Regressions, fmt.Sprintf("switch on %s: %s", n.Node, n.Title))
		}
	}
	// What the mode census names (a node left in another mode, the old
	// mode's state left behind) fails each phase's own run; the verdict
	// must not pass over it. Before the switch it means the cluster was
	// not clean in From, so nothing after it can be judged; from the
	// switch on it is what the switch left.
	for _, f := range p.Before.Mode(p.From).Meta.CensusFailures() {
		v.Problems = append(v.Problems, fmt.Sprintf("suite in %s: %s", p.From, f))
	}
	for _, ph := range []struct {
		name string
		m    *run.Mode
	}{{"switch " + p.From + " -> " + p.To, sw}, {"suite in " + p.To, p.After.Mode(p.To)}} {
		for _, f := range ph.m.Meta.CensusFailures() {
			v.Regressions = append(v.Regressions, ph.name+": "+f)
		}
	}
	switch {
	case len(v.Problems) > 0:
		// A switch whose load broke measured nothing: whatever else it
		// shows, the verdict would rest on a hole.
		v.Status = NotRun
	case len(v.Regressions) > 0:
		v.Status = Regression
	}
	return v
}

// unjudgeable says why phase r cannot be judged: it left no run, has no
// mode, its suite set-up failed, or no spec ran in it.
func unjudgeable(name string, r *run.Run, mode string) []string {
	if r == nil {
		return []string{name + ": no run to read"}
	}
	m := r.Mode(mode)
	switch {
	case m == nil:
		return []string{fmt.Sprintf("%s: run %s has no mode %s", name, r.Dir, mode)}
	case m.Counts.SetupFailed > 0:
		return []string{fmt.Sprintf("%s: the suite's set-up failed (%s)", name, m.Counts.Verdict(mode))}
	case m.Counts.Passed+m.Counts.Failed == 0:
		return []string{fmt.Sprintf("%s: no spec ran (%s)", name, m.Counts.Verdict(mode))}
	}
	return nil
}

func outcomeText(o run.Outcome) string {
	if o == "" {
		return "absent"
	}
	return "was " + string(o)
}

// sameOutcome lists the specs, by name, that passed in both modes and
// those that failed in both.
func sameOutcome(a, b *run.Mode) (passed, failed []string) {
	inA := map[string]run.Outcome{}
	for _, s := range a.Specs {
		inA[s.Name] = s.Outcome
	}
	for _, s := range b.Specs {
		switch o, ok := inA[s.Name]; {
		case !ok || o != s.Outcome:
		case o == run.Passed:
			passed = append(passed, s.Name)
		case o == run.Failed:
			failed = append(failed, s.Name)
		}
	}
	sort.Strings(passed)
	sort.Strings(failed)
	return passed, failed
}

// Figure names the migration spec records per node.
const (
	windowFigure = "migration window "
	goneFigure   = "migration old mode gone "
	failedFigure = "migration failed requests "
)

// nodeSwitches reads each node's window and failed requests from the
// switch phase's figures.
func nodeSwitches(r *run.Run, mode string) []NodeSwitch {
	byNode := map[string]*NodeSwitch{}
	get := func(node string) *NodeSwitch {
		if byNode[node] == nil {
			byNode[node] = &NodeSwitch{Node: node}
		}
		return byNode[node]
	}
	for _, set := range r.Figures {
		for _, mf := range set.ByMode {
			if mf.Mode != mode || len(mf.Figure.Values) == 0 {
				continue
			}
			if node, ok := strings.CutPrefix(set.Name, windowFigure); ok {
				get(node).Window = mf.Figure.Values[0]
			}
			if node, ok := strings.CutPrefix(set.Name, goneFigure); ok {
				get(node).Gone = mf.Figure.Values[0]
			}
			if node, ok := strings.CutPrefix(set.Name, failedFigure); ok {
				n := get(node)
				n.Failed, n.Title = mf.Figure.Values[0], mf.Figure.Title
			}
		}
	}
	var out []NodeSwitch
	for _, n := range byNode {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}
