// Command gate is what `make gate` runs: the conformance suite and a small
// side-by-side bench into one run directory, judged against a baseline and
// the reviewed thresholds (package gate). Exit status: 0 pass, 1 regression,
// 2 the run could not be done or judged (bad parameters, a missing or
// corrupt baseline or thresholds file, a cluster that did not come up).
//
//	gate run      [flags]                 run, then judge (make gate)
//	gate check    --run DIR [flags]       judge a run directory again
//	gate baseline --run DIR --out FILE    write a baseline (make gate-baseline)
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/proxyproof/proxyproof/suites/gate"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main is the command without the process; it returns the exit status.
// An error is always status 2: a regression is a verdict, never an error.
func Main(args []string, stdout, stderr io.Writer) int {
	sub := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "check" || args[0] == "baseline") {
		sub, args = args[0], args[1:]
	}
	var status int
	var err error
	switch sub {
	case "run":
		status, err = runMain(args, stdout)
	case "check":
		status, err = checkMain(args, stdout)
	case "baseline":
		err = baselineMain(args, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gate:", err)
		return gate.NotRun
	}
	return status
}
