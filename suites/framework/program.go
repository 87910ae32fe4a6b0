package framework

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RunProgram runs one of the runners a composed flow is made of (make
// gate, make certify run make e2e's runner, the bench, the report) with
// its output on out after a line "<who>: <command>", and returns its exit
// status: the runners give 1 and 2 distinct meanings. err is for a
// program that could not start or was killed, and ErrInterrupted once an
// interrupt came: it is passed on to the program (ProcessInterrupts), which
// cleans up and ends, and no further program starts.
func RunProgram(out io.Writer, who, name string, args ...string) (int, error) {
	intr := ProcessInterrupts()
	if intr.Pending() {
		return -1, fmt.Errorf("%s not started: %w (%v)", name, ErrInterrupted, intr.Got())
	}
	fmt.Fprintf(out, "%s: %s %s\n", who, name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	err := intr.Run(cmd, func(sig os.Signal) {
		fmt.Fprintf(out, "%s: %v: passed on to %s, which cleans up and ends (again to stop it at once)\n", who, sig, filepath.Base(name))
	})
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.Exited():
		code = exit.ExitCode()
	case err != nil:
		return -1, fmt.Errorf("%s: %w", name, err)
	}
	if intr.Pending() {
		return code, fmt.Errorf("%s (exit status %d): %w (%v)", name, code, ErrInterrupted, intr.Got())
	}
	return code, nil
}
