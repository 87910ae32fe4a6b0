// Package entry holds the values a suite records with ginkgo's AddReportEntry
// (figures, probes, rule dumps) so the suite and the report agree on one
// JSON shape. It must stay free of the ginkgo DSL and of any I/O.
package entry
