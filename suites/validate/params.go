package validate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// Environment variables make validate reads besides make e2e's.
const (
	EnvFrom  = "FROM"
	EnvTo    = "TO"
	EnvName  = "NAME"
	EnvLabel = "LABEL"
)

// Given are make validate's parameters, not yet checked.
type Given struct {
	From, To, Provider, Proxier, Nodes, Keep, RunDir, Name, Label string
}

// Params are the checked parameters of one make validate.
type Params struct {
	From, To string
	// Suite are the parameters every phase's suite shares (Mode aside).
	Suite framework.Params
	// Name is the one cluster's name; Label the label filter of the two
	// suite phases (the switch phase runs label migration).
	Name, Label string
}

// Check checks every parameter before anything exists: the switch, then
// make e2e's parameters for FROM, then whether the provider can run both
// modes here (Prechecker: kind refuses ipvs on a kernel without ip_vs),
// then the label filter. An error is a *framework.ParamError naming the
// value and what would work.
func (g Given) Check(pid int, now time.Time) (Params, error) {
	if err := framework.CheckSwitch(g.From, g.To); err != nil {
		return Params{}, err
	}
	p := Params{From: g.From, To: g.To, Name: g.Name, Label: g.Label}
	if p.Name == "" {
		p.Name = fmt.Sprintf("val%d", pid%100000)
	}
	if g.RunDir == "" {
		g.RunDir = filepath.Join("runs", now.UTC().Format("20060102-150405")+"-validate-"+g.From+"-"+g.To)
	}
	abs, err := filepath.Abs(g.RunDir)
	if err != nil {
		return Params{}, fmt.Errorf("run dir %s: %w", g.RunDir, err)
	}
	if _, err := os.Stat(filepath.Join(abs, ReportFile)); err == nil {
		return Params{}, &framework.ParamError{Name: framework.EnvRunDir, Value: abs, Want: "a directory holding no make validate yet (this one has " + ReportFile + ")"}
	}
	ps, err := framework.Given{Provider: g.Provider, Mode: g.From, Proxier: g.Proxier, Nodes: g.Nodes, Keep: g.Keep, RunDir: abs}.Parse()
	if err != nil {
		return Params{}, err
	}
	p.Suite = ps[0]
	for _, m := range [][2]string{{EnvFrom, g.From}, {EnvTo, g.To}} {
		if err := precheck(p.Suite, m[0], m[1]); err != nil {
			return Params{}, err
		}
	}
	if p.Label != "" {
		if _, err := types.ParseLabelFilter(p.Label); err != nil {
			return Params{}, &framework.ParamError{Name: EnvLabel, Value: p.Label, Want: "a Ginkgo label filter: labels joined by &&, || and !, with parentheses"}
		}
	}
	return p, nil
}

// precheck asks the provider, before any set-up, whether it can run mode
// (parameter name).
func precheck(p framework.Params, name, mode string) error {
	prov, _ := providers.Get(p.Provider)
	pc, ok := prov.(clusters.Prechecker)
	if !ok {
		return nil
	}
	spec := clusters.Spec{Name: "validate", Proxier: p.Proxier}
	for range p.Nodes {
		spec.Nodes = append(spec.Nodes, clusters.NodeSpec{Mode: mode})
	}
	err := pc.Precheck(spec)
	if err == nil {
		return nil
	}
	want := fmt.Sprintf("a mode PROVIDER=%s can run here (%v)", p.Provider, err)
	if errors.Is(err, clusters.ErrModeUnsupported) {
		want = fmt.Sprintf("a mode PROVIDER=%s can run on this machine: %v", p.Provider, err)
	}
	return &framework.ParamError{Name: name, Value: mode, Want: want}
}

// SuiteLabel is the label filter of a suite phase: the user's, without
// the switch, which the switch phase runs alone.
func (p Params) SuiteLabel() string {
	if p.Label == "" {
		return "!migration"
	}
	return "(" + p.Label + ") && !migration"
}

// Files of a make validate run directory: its one report, and the phases'
// run directories inside it.
const (
	ReportFile = "validate.md"
	BeforeDir  = "1-suite-from"
	SwitchDir  = "2-switch"
	AfterDir   = "3-suite-to"
)
