package framework

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// RunProgram runs one of the runners a composed flow is made of (make
// gate, make certify run make e2e's runner, the bench, the report) with
// its output on out after a line "<who>: <command>", and returns its exit
// status: the runners give 1 and 2 distinct meanings. err is for a
// program that could not start or was killed.
func RunProgram(out io.Writer, who, name string, args ...string) (int, error) {
	fmt.Fprintf(out, "%s: %s %s\n", who, name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", name, err)
	}
	return 0, nil
}
