// Package certify holds what make certify adds to the runners it
// composes (suites/certify/cmd/certify): one run directory made of our
// suite's run and upstream's conformance run, so one report, one JUnit
// and one bundle show both. It only reads the two runs and writes the
// merged one; it never runs a test or touches a cluster.
package certify
