package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/reports/ginkgo"
)

// checkSomeSpecRan fails a mode in which no spec ran: Ginkgo exits 0 when
// a filter matched nothing, and CI reads the exit status, so a typo in a
// label filter would otherwise pass. It reads the mode's ginkgo.json and
// names the filter or focus of args and the labels the suite has.
func checkSomeSpecRan(reportPath string, args []string) error {
	reports, err := ginkgo.Load(reportPath)
	if err != nil {
		return err
	}
	total, ran := 0, 0
	var labels []string
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if !ginkgo.IsSpec(s) {
				continue
			}
			total++
			if s.State != ginkgo.StateSkipped && s.State != ginkgo.StatePending {
				ran++
			}
			for _, l := range append(slices.Clone(r.SuiteLabels), s.Labels()...) {
				if !slices.Contains(labels, l) {
					labels = append(labels, l)
				}
			}
		}
	}
	if ran > 0 {
		return nil
	}
	slices.Sort(labels)
	why := "every spec was skipped or pending"
	if sel := selection(args); sel != "" {
		why = sel + " matched none"
	}
	have := "none"
	if len(labels) > 0 {
		have = strings.Join(labels, ", ")
	}
	return fmt.Errorf("no spec ran (0 of %d): %s; the suite's labels: %s", total, why, have)
}

// selection is what in args chose specs, as the user would write it.
func selection(args []string) string {
	sels, _ := selectors(args) // checkArgs refused bad ones before the run
	var out []string
	for _, s := range sels {
		out = append(out, fmt.Sprintf("--%s=%q", s.name, s.value))
	}
	return strings.Join(out, " ")
}
