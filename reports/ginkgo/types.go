package ginkgo

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report mirrors types.Report: one suite's run.
type Report struct {
	SuitePath                  string
	SuiteDescription           string
	SuiteLabels                []string
	SuiteSucceeded             bool
	SpecialSuiteFailureReasons []string
	StartTime                  time.Time
	EndTime                    time.Time
	RunTime                    time.Duration
	SpecReports                []SpecReport
}

// SpecReport mirrors types.SpecReport. Enums are the strings Ginkgo writes.
type SpecReport struct {
	ContainerHierarchyTexts    []string
	ContainerHierarchyLabels   [][]string
	LeafNodeType               string // "It", "BeforeSuite", ...
	LeafNodeLocation           CodeLocation
	LeafNodeLabels             []string
	LeafNodeText               string
	State                      string // "passed", "failed", "skipped", ...
	StartTime                  time.Time
	EndTime                    time.Time
	RunTime                    time.Duration
	Failure                    *Failure
	NumAttempts                int
	CapturedGinkgoWriterOutput string
	CapturedStdOutErr          string
	ReportEntries              []ReportEntry
	ProgressReports            []ProgressReport
	AdditionalFailures         []AdditionalFailure
	SpecEvents                 []SpecEvent
}

// CodeLocation mirrors types.CodeLocation.
type CodeLocation struct {
	FileName       string
	LineNumber     int
	FullStackTrace string
}

func (c CodeLocation) String() string {
	if c.FileName == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", c.FileName, c.LineNumber)
}

// TimelineLocation mirrors types.TimelineLocation.
type TimelineLocation struct {
	Offset int
	Order  int
	Time   time.Time
}

// Failure mirrors types.Failure.
type Failure struct {
	Message           string
	Location          CodeLocation
	TimelineLocation  TimelineLocation
	ForwardedPanic    string
	FailureNodeType   string
	AdditionalFailure *AdditionalFailure
}

// AdditionalFailure mirrors types.AdditionalFailure.
type AdditionalFailure struct {
	State   string
	Failure Failure
}

// ReportEntry mirrors types.ReportEntry; Value.AsJSON holds the value.
type ReportEntry struct {
	Visibility       string // "always", "failure-or-verbose", "never"
	Location         CodeLocation
	Time             time.Time
	TimelineLocation TimelineLocation
	Name             string
	Value            struct {
		AsJSON         string
		Representation string
	}
}

// SpecEvent mirrors types.SpecEvent (By steps, node starts, retries).
type SpecEvent struct {
	SpecEventType    string // "By", "By (End)", "Node", "Node (End)", "Repeat", "Retry"
	CodeLocation     CodeLocation
	TimelineLocation TimelineLocation
	Message          string
	Duration         time.Duration
	NodeType         string
	Attempt          int
}

// ProgressReport mirrors the part of types.ProgressReport a timeline shows.
type ProgressReport struct {
	Message          string
	CurrentStepText  string
	TimelineLocation TimelineLocation
}

// Spec states as Ginkgo writes them.
const (
	StatePassed      = "passed"
	StateSkipped     = "skipped"
	StatePending     = "pending"
	StateFailed      = "failed"
	StateAborted     = "aborted"
	StatePanicked    = "panicked"
	StateInterrupted = "interrupted"
	StateTimedout    = "timedout"
)

var knownStates = []string{StatePassed, StateSkipped, StatePending, StateFailed, StateAborted, StatePanicked, StateInterrupted, StateTimedout}

// FullText is the containers' texts and the leaf's, as Ginkgo joins them.
func (s SpecReport) FullText() string {
	texts := slices.DeleteFunc(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), func(t string) bool { return t == "" })
	return strings.Join(texts, " ")
}

// Labels are the container and leaf labels, deduplicated, outermost first.
func (s SpecReport) Labels() []string {
	var out []string
	seen := map[string]bool{}
	for _, ls := range append(slices.Clone(s.ContainerHierarchyLabels), s.LeafNodeLabels) {
		for _, l := range ls {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
}
