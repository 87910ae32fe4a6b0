package conformance

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
	"time"
)

// Result is one test case of upstream's JUnit report (junit_01.xml): what
// e2e.test said about one spec, or about a suite-level node.
type Result struct {
	// Name is the spec's full text ("[sig-network] Services should ...");
	// for a suite-level node, its node type in brackets.
	Name string
	// Spec is false for suite-level nodes ([SynchronizedBeforeSuite]...).
	Spec bool
	// State is Ginkgo's: passed, failed, skipped, panicked, timedout...
	State string
	// Message is upstream's own failure (or skip) text.
	Message  string
	Duration time.Duration
}

// Passed, Failed and Skipped sort a Result's State.
func (r Result) Passed() bool  { return r.State == "passed" }
func (r Result) Skipped() bool { return r.State == "skipped" || r.State == "pending" }
func (r Result) Failed() bool  { return !r.Passed() && !r.Skipped() }

// junitDoc is the part of Ginkgo's JUnit XML (reporters.JUnitTestSuites)
// read here: e2e.test writes it with OmitSpecLabels and
// OmitFailureMessageAttr, so the failure text is the element's body.
type junitDoc struct {
	XMLName xml.Name `xml:"testsuites"`
	Suites  []struct {
		Cases []struct {
			Name    string  `xml:"name,attr"`
			Status  string  `xml:"status,attr"`
			Time    float64 `xml:"time,attr"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Failure *junitProblem `xml:"failure"`
			Error   *junitProblem `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// leafPrefix is how Ginkgo names a spec's test case: its leaf node type.
const leafPrefix = "[It] "

// ReadJUnit reads upstream's JUnit report.
func ReadJUnit(path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("junit report: %w", err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("junit report %s: %w", path, err)
	}
	var out []Result
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			r := Result{Name: c.Name, State: c.Status, Duration: time.Duration(c.Time * float64(time.Second))}
			if name, ok := strings.CutPrefix(c.Name, leafPrefix); ok {
				r.Name, r.Spec = name, true
			}
			if r.State == "" {
				return nil, fmt.Errorf("junit report %s: test case %q has no status (not Ginkgo's JUnit?)", path, c.Name)
			}
			for _, p := range []*junitProblem{c.Failure, c.Error} {
				if p != nil && r.Message == "" {
					r.Message = strings.TrimSpace(p.Body)
					if r.Message == "" {
						r.Message = p.Message
					}
				}
			}
			if c.Skipped != nil && r.Message == "" {
				r.Message = c.Skipped.Message
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("junit report %s: no test case", path)
	}
	return out, nil
}
