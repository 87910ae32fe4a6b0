package ginkgo

import (
	"strings"
)

// FeaturePrefix marks the label that names a spec's feature group.
const FeaturePrefix = "feature:"

// NoFeature groups specs without any label.
const NoFeature = "(no feature label)"

// Feature is the group a spec is shown under: its "feature:<name>" label
// (any case), else its first label, else NoFeature.
func Feature(s SpecReport) string {
	labels := s.Labels()
	for _, l := range labels {
		if len(l) > len(FeaturePrefix) && strings.EqualFold(l[:len(FeaturePrefix)], FeaturePrefix) {
			return strings.TrimSpace(l[len(FeaturePrefix):])
		}
	}
	if len(labels) > 0 {
		return labels[0]
	}
	return NoFeature
}

// IsSpec tells an It from suite-level nodes (BeforeSuite, ReportAfterSuite,
// ...), which Ginkgo also reports but which are not counted as specs.
func IsSpec(s SpecReport) bool {
	return s.LeafNodeType == "It"
}

// Name is the text a person recognizes a spec by; suite-level nodes get
// their node type ("[BeforeSuite]").
func Name(s SpecReport) string {
	if IsSpec(s) {
		return s.FullText()
	}
	if t := s.FullText(); t != "" {
		return "[" + s.LeafNodeType + "] " + t
	}
	return "[" + s.LeafNodeType + "]"
}

// Reason is why a spec did not pass, in one line: the Skip() message, the
// failure message's first line, or the state when Ginkgo gave no message.
func Reason(s SpecReport) string {
	switch s.State {
	case StatePassed:
		return ""
	case StatePending:
		return "pending"
	}
	var msg string
	if s.Failure != nil {
		msg = strings.TrimSpace(s.Failure.Message)
		if msg == "" && s.Failure.ForwardedPanic != "" {
			msg = "panic: " + s.Failure.ForwardedPanic
		}
	}
	if msg == "" {
		if s.State == StateSkipped {
			return "skipped by filter"
		}
		return s.State
	}
	lines := strings.Split(msg, "\n")
	first := strings.TrimSpace(lines[0])
	// Gomega's Eventually says only how long it waited on line one; the
	// description the suite gave (the probe) is on line two.
	if strings.HasPrefix(first, "Timed out after") && len(lines) > 1 {
		if next := strings.TrimSpace(lines[1]); next != "" && next != "Expected" {
			first += " " + next
		}
	}
	return first
}
