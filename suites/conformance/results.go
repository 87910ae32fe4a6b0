package conformance

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/ginkgo"
	"github.com/proxyproof/proxyproof/reports/run"
)

// Judge sorts every spec of the list into an outcome from e2e.test's
// JUnit results, selected specs only, sorted by name. Suite-level
// failures (a failed BeforeSuite) come back as problems.
func (s *Specs) Judge(results []Result) (specs []run.UpstreamSpec, problems []string) {
	seen := map[string]bool{}
	for _, r := range results {
		if !r.Spec {
			if r.Failed() {
				problems = append(problems, fmt.Sprintf("%s %s: %s", r.Name, r.State, firstLine(r.Message)))
			}
			continue
		}
		selected, skip := s.Selected(r.Name)
		if !selected || seen[r.Name] {
			continue
		}
		seen[r.Name] = true
		sr := run.UpstreamSpec{Name: r.Name, Message: r.Message, Took: r.Duration}
		switch {
		case skip != nil:
			sr.Outcome, sr.Reason, sr.Message = run.UpstreamNotRun, skip.Reason, skip.Why
		case r.Passed():
			sr.Outcome = run.UpstreamPassed
		case r.Skipped():
			sr.Outcome = run.UpstreamSkipped
		default:
			sr.Outcome = run.UpstreamFailed
		}
		specs = append(specs, sr)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs, problems
}

// GroupLabel is the report's group of an upstream spec: "upstream " and
// the Describe it sits in ("upstream Services", "upstream Networking").
func GroupLabel(name string) string {
	rest := strings.TrimSpace(strings.TrimPrefix(name, "[sig-network]"))
	if i := strings.IndexByte(rest, ' '); i > 0 {
		rest = rest[:i]
	}
	return ginkgo.FeaturePrefix + "upstream " + rest
}

// GinkgoReport is a mode's results as the report package reads a
// ginkgo.json (reports/ginkgo), so upstream specs show in the same page,
// compare and bundle as the suite's own: one spec per selected upstream
// spec, the spec list's why as the message of a spec not run.
func GinkgoReport(specs []run.UpstreamSpec, problems []string, start, end time.Time) ginkgo.Report {
	rep := ginkgo.Report{
		SuitePath:                  "k8s.io/kubernetes/test/e2e",
		SuiteDescription:           "Kubernetes e2e suite ([sig-network] Service proxy specs, make conformance)",
		SuiteLabels:                []string{"upstream"},
		SpecialSuiteFailureReasons: problems,
		StartTime:                  start,
		EndTime:                    end,
		RunTime:                    end.Sub(start),
	}
	ok := len(problems) == 0
	for _, s := range specs {
		sr := ginkgo.SpecReport{
			LeafNodeType:   "It",
			LeafNodeText:   s.Name,
			LeafNodeLabels: []string{GroupLabel(s.Name)},
			RunTime:        s.Took,
			NumAttempts:    1,
		}
		if strings.Contains(s.Name, "[Conformance]") {
			sr.LeafNodeLabels = append(sr.LeafNodeLabels, "Conformance")
		}
		switch s.Outcome {
		case run.UpstreamPassed:
			sr.State = ginkgo.StatePassed
		case run.UpstreamNotRun:
			sr.State = ginkgo.StateSkipped
			sr.Failure = &ginkgo.Failure{Message: "not run (" + s.Reason + "): " + s.Message}
		case run.UpstreamSkipped:
			sr.State = ginkgo.StateSkipped
			sr.Failure = &ginkgo.Failure{Message: "skipped by e2e.test: " + s.Message}
		default:
			sr.State, ok = ginkgo.StateFailed, false
			sr.Failure = &ginkgo.Failure{Message: s.Message}
		}
		rep.SpecReports = append(rep.SpecReports, sr)
	}
	rep.SuiteSucceeded = ok
	return rep
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
