package bundle

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/html"

	"github.com/proxyproof/proxyproof/reports/junit"
	"github.com/proxyproof/proxyproof/reports/run"
)

// specKey is one spec in one mode, as both files name it.
type specKey struct{ Mode, Name string }

func (k specKey) String() string { return fmt.Sprintf("[%s] %s", k.Mode, k.Name) }

// shown is what one file shows: modes in order, verdict lines by mode,
// outcomes by spec and the specs in order.
type shown struct {
	modes    []string
	verdicts map[string]string
	outcome  map[specKey]string
	order    []specKey
}

func (s *shown) add(k specKey, outcome string) {
	if _, dup := s.outcome[k]; !dup {
		s.order = append(s.order, k)
	}
	s.outcome[k] = outcome
}

// agree checks that report.html and junit_01.xml show the same modes and
// the same specs with the same outcomes, JUnit's order first; it returns
// how many specs they show.
func agree(files map[string][]byte) (int, error) {
	j, err := junitShows(files[JUnitFile])
	if err != nil {
		return 0, &Mismatch{JUnitFile, err.Error()}
	}
	r, err := reportShows(files[run.ReportFile])
	if err != nil {
		return 0, &Mismatch{run.ReportFile, err.Error()}
	}
	if !slices.Equal(j.modes, r.modes) {
		return 0, &Mismatch{JUnitFile, fmt.Sprintf("modes %v, report.html shows %v", j.modes, r.modes)}
	}
	for _, k := range j.order {
		got, ok := r.outcome[k]
		switch {
		case !ok:
			return 0, &Mismatch{JUnitFile, fmt.Sprintf("spec %s (%s) is not in report.html", k, j.outcome[k])}
		case got != j.outcome[k]:
			return 0, &Mismatch{JUnitFile, fmt.Sprintf("spec %s %s, report.html shows it %s", k, j.outcome[k], got)}
		}
	}
	for _, k := range r.order {
		if _, ok := j.outcome[k]; !ok {
			return 0, &Mismatch{run.ReportFile, fmt.Sprintf("spec %s (%s) is not in junit_01.xml", k, r.outcome[k])}
		}
	}
	return len(j.order), nil
}

// junitShows reads the merged JUnit: a testsuite per mode, each case
// named "[mode] spec".
func junitShows(data []byte) (*shown, error) {
	var doc junit.TestSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not JUnit XML: %w", err)
	}
	s := &shown{outcome: map[specKey]string{}}
	for _, suite := range doc.Suites {
		s.modes = append(s.modes, suite.Name)
		for _, c := range suite.Cases {
			name, ok := strings.CutPrefix(c.Name, "["+suite.Name+"] ")
			if !ok {
				return nil, fmt.Errorf("testsuite %s: case %q is not named \"[%s] <spec>\"", suite.Name, c.Name, suite.Name)
			}
			s.add(specKey{suite.Name, name}, caseOutcome(c))
		}
	}
	return s, nil
}

// caseOutcome is the report's outcome class of a JUnit case.
func caseOutcome(c junit.TestCase) string {
	switch {
	case c.Failure != nil || c.Error != nil:
		return string(run.Failed)
	case c.Skipped != nil && c.Status == "pending":
		return string(run.Pending)
	case c.Skipped != nil:
		return string(run.Skipped)
	}
	return string(run.Passed)
}

// reportShows reads the report page's verdicts and its specs x modes
// matrix: the page a reviewer reads, not a copy of its data.
func reportShows(data []byte) (*shown, error) {
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not HTML: %w", err)
	}
	s := &shown{outcome: map[specKey]string{}, verdicts: map[string]string{}}
	var walkErr error
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch {
			case n.Data == "li" && hasClass(n, "verdict") && attr(n, "data-mode") != "":
				s.modes = append(s.modes, attr(n, "data-mode"))
				s.verdicts[attr(n, "data-mode")] = ownText(n)
			case n.Data == "table" && hasClass(n, "matrix") && walkErr == nil:
				walkErr = matrixRows(n, s)
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return s, walkErr
}

// matrixRows reads the rows of the specs x modes matrix (other tables
// of the page are not its record of outcomes).
func matrixRows(n *html.Node, s *shown) error {
	if n.Type == html.ElementNode && n.Data == "tr" {
		return matrixRow(n, s)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if err := matrixRows(c, s); err != nil {
			return err
		}
	}
	return nil
}

// matrixRow reads one row of the matrix: a spec cell, then a cell per
// mode; a mode the spec did not run in is "absent".
func matrixRow(tr *html.Node, s *shown) error {
	var name string
	for td := tr.FirstChild; td != nil; td = td.NextSibling {
		switch {
		case td.Type != html.ElementNode || td.Data != "td":
		case hasClass(td, "spec"):
			name = text(td)
		case hasClass(td, "cell"):
			if name == "" {
				return fmt.Errorf("a matrix cell (mode %s) with no spec name before it", attr(td, "data-mode"))
			}
			if o := attr(td, "data-outcome"); o != "absent" {
				s.add(specKey{attr(td, "data-mode"), name}, o)
			}
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// text is all the text under n.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// ownText is n's text without its child elements' (a verdict's problem
// spans).
func ownText(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return strings.TrimSpace(b.String())
}
