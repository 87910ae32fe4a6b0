package framework

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// Interrupts passes interrupts (SIGINT, SIGTERM) that reach a runner
// (make e2e's, make gate, make certify) on to the program it runs, and
// remembers that one came so no further step starts.
//
// Why a runner does not simply die with the terminal's ^C: the suite owns
// its cluster and tears it down in AfterSuite once Ginkgo sees an
// interrupt. With its runner gone, the suite's clean-up log went into a
// pipe nobody read, the suite died of SIGPIPE half-way, and a kind cluster
// (containers, network, forwarding rule) outlived the run. And `kill -INT`
// of the runner alone never reached the suite at all. So each program runs
// in its own process group and hears exactly what its runner passes on:
// the first interrupt (Ginkgo interrupts the spec and runs the clean-up
// nodes), and a second (Ginkgo stops at once), as if the user had pressed
// ^C at the suite itself, however many runners stand between.
type Interrupts struct {
	sigs <-chan os.Signal
	got  os.Signal
}

// ProcessInterrupts catches SIGINT and SIGTERM for the rest of the
// process's life, once: from the first call on they reach the programs
// Run runs instead of ending this process.
var ProcessInterrupts = sync.OnceValue(func() *Interrupts {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	return &Interrupts{sigs: sigs}
})

// ErrInterrupted: an interrupt came; the program it was passed on to has
// ended, or a program was not started for it.
var ErrInterrupted = errors.New("interrupted")

// InterruptsFrom reads interrupts from sigs (tests send their own).
func InterruptsFrom(sigs <-chan os.Signal) *Interrupts { return &Interrupts{sigs: sigs} }

// Got is the first interrupt that came, nil for none.
func (i *Interrupts) Got() os.Signal {
	i.Pending()
	return i.got
}

// Pending reports whether an interrupt came, taking one that waits.
func (i *Interrupts) Pending() bool {
	if i.got != nil {
		return true
	}
	select {
	case i.got = <-i.sigs:
	default:
	}
	return i.got != nil
}

// Run starts cmd in its own process group and waits for it, passing on
// every interrupt that comes meanwhile; onFirst is told of the first.
func (i *Interrupts) Run(cmd *exec.Cmd, onFirst func(os.Signal)) error {
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
