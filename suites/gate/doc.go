// Package gate is what `make gate` decides with: a baseline (a committed
// file or a previous run directory), the reviewed thresholds file, the
// verdict of a run against both, and the Markdown summary CI shows. It
// compares through reports/compare and never runs a cluster itself; the
// command in cmd/gate runs the suite and the bench as programs.
package gate
