package bundle

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/census"
)

// VersionsFile is the bundle's record of everything involved.
const VersionsFile = "versions.json"

// Versions are the exact versions of everything a certification run
// involved, restated from run.json (what the runner and the cluster
// recorded) so a reviewer reads them in one place; verify-bundle checks
// every claim here against run.json.
type Versions struct {
	// Suite is the proxyproof commit that ran the suite (git describe
	// --always --dirty --abbrev=40 at run time).
	Suite    string `json:"suite"`
	Provider string `json:"provider"`
	// Kubernetes is the API server's gitVersion, as it reported it.
	Kubernetes string      `json:"kubernetes"`
	Proxier    run.Proxier `json:"proxier"`
	// RunnerKernel is the kernel of the machine that ran the suite.
	RunnerKernel string `json:"runnerKernel,omitempty"`
	// Conformance says whether upstream's network conformance specs ran
	// and, when not, why.
	Conformance string         `json:"conformance"`
	Modes       []ModeVersions `json:"modes"`
}

// ModeVersions is one mode's cluster: each node and the mode it ran.
type ModeVersions struct {
	Name  string         `json:"name"`
	Nodes []NodeVersions `json:"nodes"`
}

// NodeVersions is one node as the run recorded it: the mode it was made
// to run and, from the run's last mode census of it, its kernel, the mode
// its proxier declared, the mode its kernel carried and other modes'
// leftovers (empty when the run took no census).
type NodeVersions struct {
	Name      string   `json:"name"`
	Mode      string   `json:"mode"`
	Kernel    string   `json:"kernel,omitempty"`
	Declared  string   `json:"declared,omitempty"`
	Carried   string   `json:"carried,omitempty"`
	Leftovers []string `json:"leftovers,omitempty"`
}

// VersionsOf restates what r recorded; conformance is the certify run's
// statement about upstream's specs.
func VersionsOf(r *run.Run, conformance string) Versions {
	m := r.Meta
	v := Versions{Suite: m.Suite, Provider: m.Provider, Kubernetes: m.KubernetesVersion, Proxier: m.Proxier,
		RunnerKernel: m.Kernel, Conformance: conformance}
	for _, mode := range r.Modes {
		mv := ModeVersions{Name: mode.Name, Nodes: []NodeVersions{}}
		for _, n := range nodeNames(mode.Meta) {
			mv.Nodes = append(mv.Nodes, nodeVersions(mode.Meta, n))
		}
		v.Modes = append(v.Modes, mv)
	}
	return v
}

// nodeNames are the nodes the run made and those its census found.
func nodeNames(m run.ModeMeta) []string {
	names := maps.Clone(m.Nodes)
	if names == nil {
		names = map[string]string{}
	}
	for n := range lastCensus(m) {
		names[n] = ""
	}
	return slices.Sorted(maps.Keys(names))
}

func nodeVersions(m run.ModeMeta, name string) NodeVersions {
	c := lastCensus(m)[name]
	return NodeVersions{Name: name, Mode: m.Nodes[name], Kernel: c.Kernel, Declared: c.Declared, Carried: c.Carried, Leftovers: c.Leftovers}
}

// lastCensus is each node's entry in the last census that has it: the end
// of the run's when the run got that far.
func lastCensus(m run.ModeMeta) map[string]census.Node {
	out := map[string]census.Node{}
	for _, c := range m.Census {
		for _, n := range c.Nodes {
			out[n.Name] = n
		}
	}
	return out
}

func (v Versions) encode() ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bundle: %s: %w", VersionsFile, err)
	}
	return append(b, '\n'), nil
}
