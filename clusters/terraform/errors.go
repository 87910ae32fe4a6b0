package terraform

import (
	"fmt"
	"strings"
)

// StepError is a terraform step that failed, with what the driver did
// about it: a failed apply destroys what was made and keeps the state and
// the log in Dir.
type StepError struct {
	Step   string // init, apply, output, destroy, or a check of the outputs
	Module string // TF_DIR
	Dir    string // the work dir: state, log, destroy.sh
	Cause  string
	// Made is what the state held when the step failed; Destroyed says
	// whether the destroy that followed removed it (DestroyErr if not).
	Made       []string
	Destroyed  bool
	DestroyErr error
	Kept       bool // KEEP=1: nothing destroyed on purpose
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "terraform %s of module %s failed: %s", e.Step, e.Module, e.Cause)
	switch {
	case len(e.Made) == 0:
		b.WriteString("\nnothing was made (the state holds no resource)")
	case e.Kept:
		fmt.Fprintf(&b, "\nKEEP=1: left what was made (%s); %s/%s destroys it", strings.Join(e.Made, ", "), e.Dir, DestroyFile)
	case e.Destroyed:
		fmt.Fprintf(&b, "\ndestroyed what was made: %s", strings.Join(e.Made, ", "))
	case e.DestroyErr != nil:
		fmt.Fprintf(&b, "\ndestroying what was made (%s) failed too: %v; retry with %s/%s", strings.Join(e.Made, ", "), e.DestroyErr, e.Dir, DestroyFile)
	}
	fmt.Fprintf(&b, "\nstate and log kept in %s (%s, %s)", e.Dir, StateFile, LogFile)
	return b.String()
}
