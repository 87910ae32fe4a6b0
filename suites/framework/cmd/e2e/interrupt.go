package main

import (
	"os"
	"os/exec"
	"syscall"
)

// interrupts passes interrupts (SIGINT, SIGTERM) that reach e2e on to the
// suite it runs, and remembers that one came so no further mode starts.
//
// Why e2e does not simply die with the terminal's ^C: the suite owns its
// cluster and tears it down in AfterSuite once Ginkgo sees an interrupt.
// With e2e gone, the suite's clean-up log went into a pipe nobody read,
// the suite died of SIGPIPE half-way, and a kind cluster (containers,
// network, forwarding rule) outlived the run. And `kill -INT` of e2e alone
// never reached the suite at all. So the suite runs in its own process
// group and hears exactly what e2e passes on: the first interrupt (Ginkgo
// interrupts the spec and runs the clean-up nodes), and a second (Ginkgo
// stops at once), as if the user had pressed ^C at the suite itself.
type interrupts struct {
	sigs <-chan os.Signal
	got  os.Signal
}

// pending reports whether an interrupt came, taking one that waits.
func (i *interrupts) pending() bool {
	if i.got != nil {
		return true
	}
	select {
	case i.got = <-i.sigs:
	default:
	}
	return i.got != nil
}

// run starts cmd in its own process group and waits for it, passing on
// every interrupt that comes meanwhile; onFirst is told of the first.
func (i *interrupts) run(cmd *exec.Cmd, onFirst func(os.Signal)) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			return err
		case sig := <-i.sigs:
			if i.got == nil {
				i.got = sig
				onFirst(sig)
			}
			// The suite may have exited between the two selects: then
			// Signal fails and done says so next.
			_ = cmd.Process.Signal(sig)
		}
	}
}
