// Package validate is make validate: the pre-upgrade check of a mode
// switch on one cluster (the suite in FROM, every node switched under
// load, the suite in TO), judged in one report. It reads the three phases'
// run directories through reports/run and compares the two modes with
// reports/compare; it never runs anything itself (cmd/validate does).
package validate
