package junit

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/ginkgo"
	"github.com/proxyproof/proxyproof/reports/run"
)

// TestSuites is the document root.
type TestSuites struct {
	XMLName  xml.Name    `xml:"testsuites"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Suites   []TestSuite `xml:"testsuite"`
}

// TestSuite is one mode.
type TestSuite struct {
	Name       string     `xml:"name,attr"`
	Tests      int        `xml:"tests,attr"`
	Failures   int        `xml:"failures,attr"`
	Errors     int        `xml:"errors,attr"`
	Skipped    int        `xml:"skipped,attr"`
	Time       float64    `xml:"time,attr"`
	Timestamp  string     `xml:"timestamp,attr,omitempty"`
	Properties []Property `xml:"properties>property"`
	Cases      []TestCase `xml:"testcase"`
}

// Property is an environment fact (provider, kernel, proxier).
type Property struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// TestCase is one spec in one mode.
type TestCase struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Status    string   `xml:"status,attr"`
	Time      float64  `xml:"time,attr"`
	Failure   *Problem `xml:"failure"`
	Error     *Problem `xml:"error"`
	Skipped   *Skip    `xml:"skipped"`
	SystemOut string   `xml:"system-out,omitempty"`
}

// Problem is a failure or an error with its full text.
type Problem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// Skip carries why a spec did not run.
type Skip struct {
	Message string `xml:"message,attr"`
}

// FromRun merges the modes of a run into one document.
func FromRun(r *run.Run) TestSuites {
	doc := TestSuites{Name: "proxyproof " + r.Meta.Name}
	if r.Meta.Name == "" {
		doc.Name = "proxyproof"
	}
	for _, m := range r.Modes {
		s := TestSuite{Name: m.Name, Properties: properties(r, m)}
		if t := m.Start(); !t.IsZero() {
			s.Timestamp = t.UTC().Format(time.RFC3339)
			s.Time = seconds(m.End().Sub(t))
		}
		for _, sp := range m.Specs {
			c := testCase(sp)
			s.Tests++
			switch {
			case c.Failure != nil:
				s.Failures++
			case c.Error != nil:
				s.Errors++
			case c.Skipped != nil:
				s.Skipped++
			}
			s.Cases = append(s.Cases, c)
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		doc.Time += s.Time
		doc.Suites = append(doc.Suites, s)
	}
	return doc
}

func properties(r *run.Run, m *run.Mode) []Property {
	var out []Property
	for _, kv := range [][2]string{
		{"mode", m.Name}, {"provider", r.Meta.Provider}, {"kernel", r.Meta.Kernel},
		{"kubernetes", r.Meta.KubernetesVersion}, {"proxier", strings.TrimSpace(r.Meta.Proxier.Name + " " + r.Meta.Proxier.Version)},
	} {
		if kv[1] != "" {
			out = append(out, Property{Name: kv[0], Value: kv[1]})
		}
	}
	return out
}

func testCase(s *run.Spec) TestCase {
	c := TestCase{
		Name:      "[" + s.Mode + "] " + s.Name,
		Classname: s.Mode + "." + s.Feature,
		Status:    s.State,
		Time:      seconds(s.Duration),
		SystemOut: s.Output,
	}
	switch s.Outcome {
	case run.Skipped, run.Pending:
		c.Skipped = &Skip{Message: s.Reason}
	case run.Failed:
		p := &Problem{Message: s.Reason, Type: s.State, Text: failureText(s)}
		// Ginkgo's own JUnit reporter: a failed assertion is a failure;
		// a panic, an interrupt or an abort is an error.
		switch s.State {
		case ginkgo.StateFailed, ginkgo.StateTimedout:
			c.Failure = p
		default:
			c.Error = p
		}
	}
	return c
}

func failureText(s *run.Spec) string {
	var b strings.Builder
	for _, p := range s.ShownProbes() {
		fmt.Fprintf(&b, "probe: %s\n", p.Description)
		if p.Expected != "" {
			fmt.Fprintf(&b, "expected: %s\n", p.Expected)
		}
		if p.Seen != "" {
			fmt.Fprintf(&b, "seen: %s\n", p.Seen)
		}
	}
	b.WriteString(s.Message)
	if s.FailureLocation != "" {
		fmt.Fprintf(&b, "\nat %s", s.FailureLocation)
	}
	return b.String()
}

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// Write encodes the document with its XML header; nothing is written if
// encoding fails.
func Write(w io.Writer, doc TestSuites) error {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: encoding %s: %w", doc.Name, err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
