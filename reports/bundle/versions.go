package bundle

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/proxyproof/proxyproof/reports/run"
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

// NodeVersions is one node as the run recorded it.
type NodeVersions struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
}

// VersionsOf restates what r recorded; conformance is the certify run's
// statement about upstream's specs.
func VersionsOf(r *run.Run, conformance string) Versions {
	m := r.Meta
	v := Versions{Suite: m.Suite, Provider: m.Provider, Kubernetes: m.KubernetesVersion, Proxier: m.Proxier,
		RunnerKernel: m.Kernel, Conformance: conformance}
	for _, mode := range r.Modes {
		mv := ModeVersions{Name: mode.Name, Nodes: []NodeVersions{}}
		for _, n := range slices.Sorted(maps.Keys(mode.Meta.Nodes)) {
			mv.Nodes = append(mv.Nodes, NodeVersions{Name: n, Mode: mode.Meta.Nodes[n]})
		}
		v.Modes = append(v.Modes, mv)
	}
	return v
}

func (v Versions) encode() ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bundle: %s: %w", VersionsFile, err)
	}
	return append(b, '\n'), nil
}
