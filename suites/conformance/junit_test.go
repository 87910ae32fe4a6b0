package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/reports/ginkgo"
	"github.com/proxyproof/proxyproof/reports/run"
)

// testdata/junit_01.xml is a real e2e.test run's JUnit (testdata/README).
func TestReadJUnitOfARealE2ETestRun(t *testing.T) {
	results, err := ReadJUnit("testdata/junit_01.xml")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]Result{}
	suiteNodes := 0
	for _, r := range results {
		if !r.Spec {
			suiteNodes++
			if !r.Passed() {
				t.Errorf("suite node %s: %s", r.Name, r.State)
			}
			continue
		}
		by[r.Name] = r
	}
	if suiteNodes == 0 {
		t.Error("no suite-level node read ([SynchronizedBeforeSuite]...): names lost their [It] tell")
	}
	basic := by["[sig-network] Services should serve a basic endpoint from pods [Conformance]"]
	if basic.State != "timedout" || !basic.Failed() || !strings.Contains(basic.Message, "A suite timeout occurred") || basic.Duration < 90e9 {
		t.Errorf("the timed-out spec reads as %+v, want timedout with upstream's message and its 94 s", basic)
	}
	if r := by["[sig-network] Services should work after restarting apiserver [Disruptive]"]; !r.Skipped() {
		t.Errorf("a spec the skip filtered reads as %+v, want skipped", r)
	}
}

func TestJudgeSortsARealRunsSpecsByTheSpecList(t *testing.T) {
	results, err := ReadJUnit("testdata/junit_01.xml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSpecs(SpecsFile)
	if err != nil {
		t.Fatal(err)
	}
	specs, problems := s.Judge(results)
	if len(problems) != 0 {
		t.Errorf("problems %v: every suite node of this run passed", problems)
	}
	got := map[string]run.UpstreamSpec{}
	for _, sp := range specs {
		got[sp.Name] = sp
		if !strings.Contains(sp.Name, "[sig-network] Services ") && !strings.Contains(sp.Name, "[sig-network] Networking ") &&
			!strings.Contains(sp.Name, "[sig-network] Conntrack ") {
			t.Errorf("%q judged: not in the spec list's focus", sp.Name)
		}
	}
	for name, want := range map[string]string{
		"[sig-network] Services should serve a basic endpoint from pods [Conformance]":           run.UpstreamFailed,
		"[sig-network] Services should work after restarting apiserver [Disruptive]":             run.UpstreamNotRun,
		"[sig-network] Services should provide secure master service [Conformance]":              run.UpstreamSkipped,
		"[sig-network] Services should work after restarting kube-proxy [Disruptive]":            run.UpstreamNotRun,
		"[sig-network] Services should find a service from listing all namespaces [Conformance]": run.UpstreamSkipped,
	} {
		if got[name].Outcome != want {
			t.Errorf("%q: %q, want %q", name, got[name].Outcome, want)
		}
	}
	if r := got["[sig-network] Services should work after restarting apiserver [Disruptive]"]; r.Reason != ReasonDisruptive || r.Message == "" {
		t.Errorf("not-run spec %+v: want the list's reason and why", r)
	}
	c := run.CountUpstream(specs)
	if c.Failed != 1 || c.Passed != 0 || c.NotRun == 0 || c.Failed+c.Passed+c.NotRun+c.Skipped != len(specs) {
		t.Errorf("counts %v over %d specs", c, len(specs))
	}
	// The report's view: the failure keeps upstream's message, a spec not
	// run says why.
	rep := GinkgoReport(specs, problems, time.Time{}, time.Time{})
	for _, sr := range rep.SpecReports {
		switch sr.LeafNodeText {
		case "[sig-network] Services should serve a basic endpoint from pods [Conformance]":
			if sr.State != ginkgo.StateFailed || !strings.Contains(ginkgo.Reason(sr), "A suite timeout occurred") {
				t.Errorf("report reason %q (state %s)", ginkgo.Reason(sr), sr.State)
			}
		case "[sig-network] Services should work after restarting apiserver [Disruptive]":
			if !strings.HasPrefix(ginkgo.Reason(sr), "not run (disruptive): ") {
				t.Errorf("report reason %q", ginkgo.Reason(sr))
			}
		}
	}
	if rep.SuiteSucceeded {
		t.Error("a run with a failed spec reads as succeeded")
	}
}
