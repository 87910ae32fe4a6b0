package run

import (
	"fmt"
	"time"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/reports/ginkgo"
)

// Run is a loaded run directory.
type Run struct {
	Dir   string
	Meta  Meta
	Modes []*Mode
	// Rows are the specs x modes matrix, grouped by feature in Features order.
	Rows     []*Row
	Features []string
	Figures  []*FigureSet
	Bench    *Bench
	// Conformance is conformance.json of a make conformance run, else nil.
	Conformance *Conformance
	// LogPath is the run log when the runner left one.
	LogPath string
	// Warnings are problems that do not make the report wrong but that the
	// reader should know (a dump file that is gone, a figure recorded twice).
	Warnings []string
}

// Mode is one mode's results.
type Mode struct {
	Name     string
	Dir      string
	Meta     ModeMeta
	Reports  []ginkgo.Report
	Specs    []*Spec
	Counts   Counts
	Problems []string // Ginkgo's SpecialSuiteFailureReasons: interrupted, ...
}

// Start and End of the mode's suite as Ginkgo saw it, else as run.json says.
func (m *Mode) Start() time.Time {
	if len(m.Reports) > 0 && !m.Reports[0].StartTime.IsZero() {
		return m.Reports[0].StartTime
	}
	return m.Meta.Start
}

// End is the latest end time of the mode's suites.
func (m *Mode) End() time.Time {
	var end time.Time
	for _, r := range m.Reports {
		if r.EndTime.After(end) {
			end = r.EndTime
		}
	}
	if end.IsZero() {
		return m.Meta.End
	}
	return end
}

// Counts are the spec outcomes of one mode; suite-level nodes are not specs.
type Counts struct {
	Total, Passed, Failed, Skipped, Pending int
	// SetupFailed counts failed suite-level nodes (BeforeSuite, ...).
	SetupFailed int
}

// Verdict is the one line at the top of the report:
// "nftables: 41/42 passed, 1 failed".
func (c Counts) Verdict(mode string) string {
	if c.Total == 0 && c.SetupFailed == 0 {
		return fmt.Sprintf("%s: no specs ran", mode)
	}
	s := fmt.Sprintf("%s: %d/%d passed", mode, c.Passed, c.Total)
	if c.Failed > 0 {
		s += fmt.Sprintf(", %d failed", c.Failed)
	}
	if c.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", c.Skipped)
	}
	if c.Pending > 0 {
		s += fmt.Sprintf(", %d pending", c.Pending)
	}
	if c.SetupFailed > 0 {
		s += fmt.Sprintf(", suite setup failed (%d)", c.SetupFailed)
	}
	return s
}

// OK is true when nothing failed.
func (c Counts) OK() bool { return c.Failed == 0 && c.SetupFailed == 0 }

// Class is how a verdict looks: "ok" (something passed, nothing failed),
// "bad" (something failed) or "empty" (nothing failed because nothing ran,
// which must not look like a pass).
func (c Counts) Class() string {
	switch {
	case !c.OK():
		return "bad"
	case c.Passed == 0:
		return "empty"
	}
	return "ok"
}

// Outcome is a spec's result class, the four a matrix cell shows.
type Outcome string

// Outcomes.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
	Pending Outcome = "pending"
)

// OutcomeOf folds Ginkgo's states: panicked, timed out, interrupted and
// aborted are all failures to a reader.
func OutcomeOf(state string) Outcome {
	switch state {
	case ginkgo.StatePassed:
		return Passed
	case ginkgo.StateSkipped:
		return Skipped
	case ginkgo.StatePending:
		return Pending
	}
	return Failed
}

// Spec is one spec (or failed suite-level node) in one mode.
type Spec struct {
	Mode    string
	ID      string // entry.SpecID of the name: the dumps directory
	Name    string
	Feature string
	Labels  []string
	Suite   bool // a suite-level node, not an It
	State   string
	Outcome Outcome
	// Reason is the one-line why for anything but a pass.
	Reason   string
	Location string
	Start    time.Time
	Duration time.Duration
	Attempts int
	// Message and FailureLocation are the full failure, when it failed.
	Message         string
	FailureLocation string
	Probes          []entry.Probe
	Dumps           []RuleDump
	Timeline        []ginkgo.Event
	Output          string
	figures         []entry.Figure
	file            string
	line            int
}

// ShownProbes are the probes worth showing for a failure: those marked
// failed, else the last one recorded.
func (s *Spec) ShownProbes() []entry.Probe {
	var out []entry.Probe
	for _, p := range s.Probes {
		if p.Failed {
			out = append(out, p)
		}
	}
	if len(out) == 0 && len(s.Probes) > 0 {
		out = s.Probes[len(s.Probes)-1:]
	}
	return out
}

// RuleDump is a loaded rule dump of one node.
type RuleDump struct {
	Node      string
	Kind      string
	Path      string // relative to the run directory
	Text      string
	Truncated bool
}

// Row is one spec across modes.
type Row struct {
	Feature string
	Name    string
	Cells   map[string]*Spec // by mode name; absent: not in that mode's run
	file    string
	line    int
}

// FigureSet is one figure name with one figure per mode, in mode order.
type FigureSet struct {
	Name, Title, Unit, Kind, XUnit string
	ByMode                         []ModeFigure
}

// ModeFigure is a figure as recorded in one mode.
type ModeFigure struct {
	Mode   string
	Figure entry.Figure
}

// Mode is the run's mode called name, or nil when the run has none.
func (r *Run) Mode(name string) *Mode {
	for _, m := range r.Modes {
		if m.Name == name {
			return m
		}
	}
	return nil
}
