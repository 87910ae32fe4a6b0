package run

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ConformanceFile is written by make conformance (suites/conformance): the
// upstream specs it selected and what became of each, per mode. It is
// defined here, once, because the runner writes it and the report reads it.
const ConformanceFile = "conformance.json"

// Conformance is conformance.json.
type Conformance struct {
	// Version is e2e.test's Kubernetes version.
	Version  string `json:"version"`
	Provider string `json:"provider"`
	Proxier  string `json:"proxier"`
	// SpecList is the spec list file the run used; Focus, Skip and Images
	// its content.
	SpecList string            `json:"specList"`
	Focus    []ConformanceRule `json:"focus"`
	Skip     []ConformanceRule `json:"skip"`
	Images   []string          `json:"images"`
	// Args are e2e.test's flags common to every mode (each mode adds its
	// kubeconfig and report directory).
	Args  []string          `json:"args"`
	Modes []ConformanceMode `json:"modes"`
	// LeftOut are modes MODE=all asked for that the provider cannot run
	// here (ipvs on kind without ip_vs), with why.
	LeftOut []ConformanceLeftOut `json:"leftOut,omitempty"`
}

// ConformanceLeftOut is a mode not run, and why.
type ConformanceLeftOut struct {
	Mode string `json:"mode"`
	Why  string `json:"why"`
}

// ConformanceRule is one focus or skip rule: a regular expression on the
// spec's full text, why, and (skips) the kind of reason.
type ConformanceRule struct {
	Pattern string `json:"pattern"`
	Why     string `json:"why"`
	Reason  string `json:"reason,omitempty"`
}

// ConformanceMode is one mode's run of e2e.test.
type ConformanceMode struct {
	Mode    string `json:"mode"`
	Cluster string `json:"cluster"`
	// Error is why the mode did not run to the end (no cluster, no JUnit
	// report); empty when it did.
	Error string `json:"error,omitempty"`
	// Problems are suite-level failures (a failed BeforeSuite).
	Problems []string       `json:"problems,omitempty"`
	Start    time.Time      `json:"start"`
	End      time.Time      `json:"end"`
	Counts   UpstreamCounts `json:"counts"`
	Specs    []UpstreamSpec `json:"specs"`
}

// Upstream spec outcomes in one mode.
const (
	UpstreamPassed = "passed"
	UpstreamFailed = "failed"
	// UpstreamNotRun: the spec list skips it, with its why.
	UpstreamNotRun = "not run"
	// UpstreamSkipped: e2e.test ran it and it skipped itself; upstream's
	// message says why.
	UpstreamSkipped = "skipped"
)

// UpstreamSpec is one selected upstream spec in one mode.
type UpstreamSpec struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	// Reason is the skip rule's kind of reason (not run only).
	Reason string `json:"reason,omitempty"`
	// Message is upstream's failure or skip text, or the rule's why.
	Message string        `json:"message,omitempty"`
	Took    time.Duration `json:"took,omitempty"`
}

// UpstreamCounts are a mode's outcomes.
type UpstreamCounts struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	NotRun  int `json:"notRun"`
	Skipped int `json:"skipped"`
}

// CountUpstream counts outcomes.
func CountUpstream(specs []UpstreamSpec) UpstreamCounts {
	var c UpstreamCounts
	for _, s := range specs {
		switch s.Outcome {
		case UpstreamPassed:
			c.Passed++
		case UpstreamFailed:
			c.Failed++
		case UpstreamNotRun:
			c.NotRun++
		case UpstreamSkipped:
			c.Skipped++
		}
	}
	return c
}

func (c UpstreamCounts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d not run (spec list), %d skipped by e2e.test", c.Passed, c.Failed, c.NotRun, c.Skipped)
}

// WriteConformance writes conformance.json whole or not at all.
func WriteConformance(dir string, c Conformance) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, ConformanceFile)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

// LoadConformance reads conformance.json of a run directory; nil when the
// run is not a conformance run.
func LoadConformance(dir string) (*Conformance, error) {
	var c Conformance
	err := readJSON(filepath.Join(dir, ConformanceFile), &c)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}
