package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/suites/census"
)

// File names inside a run directory.
const (
	MetaFile   = "run.json"
	LogFile    = "run.log"
	BenchFile  = "bench.json"
	ReportFile = "report.html"
	GinkgoFile = "ginkgo.json"
	DumpsDir   = "dumps"
)

// Meta is run.json: the environment a run happened in.
type Meta struct {
	Name              string     `json:"name,omitempty"`
	Provider          string     `json:"provider,omitempty"`
	Nodes             int        `json:"nodes,omitempty"`
	Kernel            string     `json:"kernel,omitempty"`
	KubernetesVersion string     `json:"kubernetesVersion,omitempty"`
	Proxier           Proxier    `json:"proxier"`
	Command           string     `json:"command,omitempty"`
	Start             time.Time  `json:"start"`
	End               time.Time  `json:"end"`
	Modes             []ModeMeta `json:"modes"`
	// Suite is the proxyproof commit that ran the suite (git describe
	// --always --dirty --abbrev=40), for the certification bundle.
	Suite string `json:"suite,omitempty"`
}

// Proxier names the proxier under test: ours, kube-proxy or a vendor's.
type Proxier struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// ModeMeta is one mode's cluster: which mode each node was made to run,
// and the mode census (suites/census, whose doc gives its JSON) taken at
// the start and the end of the run: each node's kernel and the mode it
// declared and carried. Name is the mode, or "mixed".
type ModeMeta struct {
	Name   string            `json:"name"`
	Nodes  map[string]string `json:"nodes,omitempty"`
	Census []census.Census   `json:"census,omitempty"`
	Start  time.Time         `json:"start"`
	End    time.Time         `json:"end"`
}

// CensusFailures are the census's problems, each with when and the node.
func (m ModeMeta) CensusFailures() []string {
	var out []string
	for _, c := range m.Census {
		for _, f := range c.Failures() {
			out = append(out, fmt.Sprintf("mode census at the %s: %s", c.When, f))
		}
	}
	return out
}

// HostKernel is the running kernel's release for Meta.Kernel, "" when
// unreadable.
func HostKernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// LoadMeta reads and checks run.json.
func LoadMeta(dir string) (Meta, error) {
	path := filepath.Join(dir, MetaFile)
	var m Meta
	if err := readJSON(path, &m); err != nil {
		return Meta{}, err
	}
	seen := map[string]bool{}
	for i, mm := range m.Modes {
		if mm.Name == "" {
			return Meta{}, fmt.Errorf("%s: modes[%d] has no name", path, i)
		}
		if mm.Name != filepath.Base(mm.Name) || mm.Name == "." || mm.Name == ".." {
			return Meta{}, fmt.Errorf("%s: mode %q is not a directory name", path, mm.Name)
		}
		if seen[mm.Name] {
			return Meta{}, fmt.Errorf("%s: mode %q listed twice", path, mm.Name)
		}
		seen[mm.Name] = true
	}
	if !m.Start.IsZero() && !m.End.IsZero() && m.End.Before(m.Start) {
		return Meta{}, fmt.Errorf("%s: end %s is before start %s", path, m.End.Format(time.RFC3339), m.Start.Format(time.RFC3339))
	}
	return m, nil
}

// readJSON decodes one JSON file strictly (unknown fields are typos in a
// hand-written run.json, worth an error) and names the file in any error.
func readJSON(path string, into any) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: missing: %w", path, err)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("%s: invalid JSON at byte %d: %w", path, syn.Offset, err)
		}
		if err.Error() == "EOF" {
			return fmt.Errorf("%s: file is empty", path)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
