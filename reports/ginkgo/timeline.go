package ginkgo

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/entry"
)

// Event is one line of a spec's timeline.
type Event struct {
	// At is the time since the spec started (0 when Ginkgo gave no time).
	At   time.Duration
	Kind string
	Text string
	// Failure marks the event that failed the spec.
	Failure bool
	order   int
}

// Timeline lists what happened in a spec in Ginkgo's order: By steps,
// report entries, the failure and any later failures, progress reports.
// Events Ginkgo itself shows only at -vv (node starts, By ends) are left out.
func Timeline(s SpecReport) []Event {
	at := func(t time.Time) time.Duration {
		if t.IsZero() || s.StartTime.IsZero() || t.Before(s.StartTime) {
			return 0
		}
		return t.Sub(s.StartTime)
	}
	var out []Event
	if f := s.Failure; f != nil && (f.Message != "" || f.Location.FileName != "") {
		out = append(out, Event{At: at(f.TimelineLocation.Time), Kind: "failed", Text: failureText(*f), Failure: true, order: f.TimelineLocation.Order})
		if a := f.AdditionalFailure; a != nil {
			out = append(out, Event{At: at(a.Failure.TimelineLocation.Time), Kind: "then " + a.State, Text: failureText(a.Failure), order: a.Failure.TimelineLocation.Order})
		}
	}
	for _, a := range s.AdditionalFailures {
		out = append(out, Event{At: at(a.Failure.TimelineLocation.Time), Kind: "then " + a.State, Text: failureText(a.Failure), order: a.Failure.TimelineLocation.Order})
	}
	for _, e := range s.ReportEntries {
		if e.Visibility == "never" {
			continue
		}
		t := e.TimelineLocation.Time
		if t.IsZero() {
			t = e.Time
		}
		out = append(out, Event{At: at(t), Kind: "entry", Text: abbreviate(entrySummary(e), 300), order: e.TimelineLocation.Order})
	}
	for _, p := range s.ProgressReports {
		out = append(out, Event{At: at(p.TimelineLocation.Time), Kind: "progress", Text: strings.TrimSpace(p.Message + " " + p.CurrentStepText), order: p.TimelineLocation.Order})
	}
	for _, e := range s.SpecEvents {
		switch e.SpecEventType {
		case "By (End)", "Node", "Node (End)":
			continue
		}
		text := e.Message
		if e.Attempt > 0 {
			text = strings.TrimSpace(fmt.Sprintf("%s attempt %d", text, e.Attempt))
		}
		out = append(out, Event{At: at(e.TimelineLocation.Time), Kind: e.SpecEventType, Text: text, order: e.TimelineLocation.Order})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].order != out[j].order {
			return out[i].order < out[j].order
		}
		return out[i].At < out[j].At
	})
	return out
}

func failureText(f Failure) string {
	msg := firstLine(f.Message)
	if msg == "" && f.ForwardedPanic != "" {
		msg = "panic: " + firstLine(f.ForwardedPanic)
	}
	if loc := f.Location.String(); loc != "" {
		msg += " at " + loc
	}
	return msg
}

// entrySummary says what one of this project's entries holds in a line;
// other entries print as ginkgo -v would.
func entrySummary(e ReportEntry) string {
	switch {
	case e.Name == entry.ProbeName:
		var p entry.Probe
		if decodeValue(e, &p) == nil {
			s := "probe " + p.Description
			if p.Seen != "" {
				s += ": seen " + p.Seen
			}
			return s
		}
	case e.Name == entry.DumpName:
		var d entry.Dump
		if decodeValue(e, &d) == nil {
			return strings.TrimSpace(fmt.Sprintf("rule dump of %s %s (%s)", d.Node, d.Kind, d.Path))
		}
	case strings.HasPrefix(e.Name, entry.FigurePrefix):
		var f entry.Figure
		if decodeValue(e, &f) == nil {
			_, n := f.Summary()
			return fmt.Sprintf("%s%s: %s, %d in %s", entry.FigurePrefix, f.Name, f.Kind(), n, f.Unit)
		}
	}
	return e.Name + ": " + entryText(e)
}

// entryText prefers the representation Ginkgo captured at write time (what
// ginkgo -v printed) over the raw JSON.
func entryText(e ReportEntry) string {
	if e.Value.Representation != "" {
		return e.Value.Representation
	}
	return e.Value.AsJSON
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
