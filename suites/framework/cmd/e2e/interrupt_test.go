package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/suites/framework"
)

// fakeSuite stands in for the compiled suite: it logs that it started and
// its process group, logs each SIGINT, and, like Ginkgo, keeps cleaning up
// after the first and stops at the second.
const fakeSuite = `#!/bin/sh
n=0
trap 'n=$((n+1)); echo "interrupt $n" >> "$LOG"; if [ $n -ge 2 ]; then exit 2; fi' INT
set -- $(cat /proc/$$/stat)
echo "started pgid=$5" >> "$LOG"
i=0
while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo "timed out" >> "$LOG"
`

func TestAnInterruptReachesTheSuiteItsOwnWayAndStartsNoFurtherMode(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "suite.test")
	if err := os.WriteFile(bin, []byte(fakeSuite), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	t.Setenv("LOG", log)
	sigs := make(chan os.Signal, 2)
	intr := framework.InterruptsFrom(sigs)
	var said []string
	say := func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }

	done := make(chan error, 1)
	go func() {
		_, err := runMode(framework.Params{Mode: "iptables", RunDir: dir}, nil, bin, dir, io.Discard, say, intr)
		done <- err
	}()
	waitFor := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(log)
			if strings.Contains(string(b), want) {
				return string(b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		b, _ := os.ReadFile(log)
		t.Fatalf("the suite never logged %q; its log:\n%s", want, b)
		return ""
	}

	started := waitFor("started")
	if want := fmt.Sprintf("pgid=%d\n", syscall.Getpgrp()); strings.Contains(started, want) {
		t.Errorf("the suite runs in e2e's process group (%s): a terminal's ^C would reach it beside e2e's own, a second interrupt that cuts its clean-up short", strings.TrimSpace(started))
	}
	sigs <- syscall.SIGINT
	waitFor("interrupt 1")
	select {
	case err := <-done:
		t.Fatalf("runMode returned (%v) while the suite was still cleaning up after the first interrupt", err)
	case <-time.After(300 * time.Millisecond):
	}
	if !intr.Pending() {
		t.Error("after an interrupt, pending() = false: the next mode would start")
	}
	sigs <- syscall.SIGINT
	waitFor("interrupt 2")
	select {
	case err := <-done:
		if err == nil {
			t.Error("an interrupted mode passed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runMode did not return after the suite stopped at the second interrupt")
	}
	if b, _ := os.ReadFile(log); strings.Contains(string(b), "interrupt 3") || strings.Contains(string(b), "timed out") {
		t.Errorf("the suite heard more or less than the two interrupts sent:\n%s", b)
	}
	if !strings.Contains(strings.Join(said, "\n"), "tearing its cluster down") {
		t.Errorf("e2e did not say what the interrupt does; it said:\n%s", strings.Join(said, "\n"))
	}
}

func TestNoInterruptNoPending(t *testing.T) {
	intr := framework.InterruptsFrom(make(chan os.Signal, 1))
	if intr.Pending() {
		t.Error("pending() = true with no interrupt")
	}
}
