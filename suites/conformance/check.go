package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// Given are make conformance's parameters as typed.
type Given struct {
	framework.Given
	// Name prefixes the clusters (<Name>-<mode>).
	Name string
	// SpecList is a spec list file; "" is the shipped specs.yaml.
	SpecList string
	Procs    int
}

// Checked are the parameters once every check before set-up passed.
type Checked struct {
	Params   []framework.Params
	Provider clusters.Provider
	Specs    *Specs
	// LeftOut are modes of MODE=all the provider cannot run here.
	LeftOut []run.ConformanceLeftOut
}

// Check refuses bad input before anything is built or created, with a
// *framework.ParamError naming the parameter: the shared checks of make
// e2e (mode, proxier, nodes, keep, run directory), a provider whose nodes
// have no real kubelet, modes the provider cannot run on this machine, a
// spec list that does not parse, and a run directory holding a run.
func Check(g Given) (*Checked, error) {
	ps, err := g.Given.Parse()
	if err != nil {
		return nil, err
	}
	p, _ := providers.Get(ps[0].Provider) // Parse accepted the name
	if kp, ok := p.(clusters.KubeletProvider); !ok || !kp.RealKubelet() {
		return nil, &framework.ParamError{Name: framework.EnvProvider, Value: ps[0].Provider,
			Want: "a provider whose nodes run a real kubelet and container runtime, which upstream's specs exec into and run images on: " +
				"PROVIDER=kind (" + ps[0].Provider + "'s pods are processes a node agent runs, not containers)"}
	}
	if !nameRE.MatchString(g.Name) {
		return nil, &framework.ParamError{Name: "NAME", Value: g.Name, Want: "1-20 of [a-z0-9-], starting with a letter (clusters are <NAME>-<mode>)"}
	}
	if g.Procs < 1 {
		return nil, &framework.ParamError{Name: "PROCS", Value: fmt.Sprint(g.Procs), Want: "a whole number of parallel e2e.test processes, at least 1"}
	}
	c := &Checked{Provider: p}
	if c.Params, c.LeftOut, err = precheck(p, ps, g.Mode == framework.ModeAll); err != nil {
		return nil, err
	}
	if c.Specs, err = loadList(g.SpecList); err != nil {
		return nil, &framework.ParamError{Name: "SPECS", Value: g.SpecList, Want: "a spec list as suites/conformance/specs.yaml (" + err.Error() + ")"}
	}
	for _, f := range []string{run.MetaFile, run.LogFile} {
		if _, err := os.Stat(filepath.Join(g.RunDir, f)); err == nil {
			return nil, &framework.ParamError{Name: framework.EnvRunDir, Value: g.RunDir,
				Want: "a directory holding no run yet (it has " + f + ": choose another RUN_DIR or leave it empty)"}
		}
	}
	return c, nil
}

// nameRE keeps <NAME>-<mode> a valid cluster name for every provider
// (kind: 32 characters).
var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$`)

func loadList(path string) (*Specs, error) {
	if path == "" {
		return ParseSpecs(SpecsFile)
	}
	return LoadSpecs(path)
}

// precheck asks the provider whether it can run each mode here before any
// set-up. MODE=all keeps the modes it can run and lists the others with
// why; a mode named alone that it cannot run refuses the run.
func precheck(p clusters.Provider, ps []framework.Params, all bool) ([]framework.Params, []run.ConformanceLeftOut, error) {
	pc, ok := p.(clusters.Prechecker)
	if !ok {
		return ps, nil, nil
	}
	var keep []framework.Params
	var left []run.ConformanceLeftOut
	for _, m := range ps {
		err := pc.Precheck(clusterSpec("conformance", m, nil))
		switch {
		case err == nil:
			keep = append(keep, m)
		case all && errors.Is(err, clusters.ErrModeUnsupported):
			left = append(left, run.ConformanceLeftOut{Mode: m.Mode, Why: err.Error()})
		default:
			return nil, nil, &framework.ParamError{Name: framework.EnvMode, Value: m.Mode,
				Want: fmt.Sprintf("a mode PROVIDER=%s can run here (%v)", m.Provider, err)}
		}
	}
	if len(keep) == 0 {
		return nil, nil, &framework.ParamError{Name: framework.EnvMode, Value: framework.ModeAll, Want: "a mode PROVIDER=" + p.Name() + " can run here"}
	}
	return keep, left, nil
}

// CheckBuild refuses a binary directory without e2e.test and ginkgo,
// naming the make target that builds them.
func CheckBuild(bin string) error {
	for _, b := range []string{E2ETest, Ginkgo} {
		if err := clusters.Executable(filepath.Join(bin, b)); err != nil {
			return &framework.ParamError{Name: "E2E_BIN", Value: bin,
				Want: "a directory holding upstream's " + b + " (make conformance-deps builds it; leave E2E_BIN empty and make conformance builds it itself): " + err.Error()}
		}
	}
	return nil
}

// CheckCluster asks the provider, after set-up, whether it can make each
// mode's cluster with the test images (kind: are they in Docker).
func (c *Checked) CheckCluster(name string) error {
	for _, m := range c.Params {
		if err := c.Provider.Check(clusterSpec(name+"-"+m.Mode, m, c.Specs.Images)); err != nil {
			return err
		}
	}
	return nil
}

// clusterSpec is the cluster one mode's run asks the provider for.
func clusterSpec(name string, p framework.Params, images []string) clusters.Spec {
	spec := clusters.Spec{Name: name, Proxier: p.Proxier, Keep: p.Keep, Images: images}
	for _, m := range p.NodeModeList() {
		spec.Nodes = append(spec.Nodes, clusters.NodeSpec{Mode: m})
	}
	return spec
}
