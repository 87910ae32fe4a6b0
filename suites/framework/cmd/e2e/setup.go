package main

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Set-up scripts, from the repository root (where make runs the runner).
// Each is idempotent and returns at once when its work is done, so make
// e2e runs them every time and works as the first command on a fresh
// machine.
const (
	installDeps       = "hack/install-deps.sh"
	buildControlPlane = "hack/controlplane/build.sh"
	buildVMImage      = "hack/vm/build-image.sh"
)

// setupSteps are the scripts a run of modes needs: the Debian packages,
// the control plane, and the kernel VM image only when a mode's nodes run
// in the VM here (runsInVM: ipvs on a kernel without ip_vs).
func setupSteps(modes []string, runsInVM func(mode string) bool) []string {
	steps := []string{installDeps, buildControlPlane}
	if slices.ContainsFunc(modes, runsInVM) {
		steps = append(steps, buildVMImage)
	}
	return steps
}

// runSetup runs each step with its output streamed, so a long build is
// seen to progress, and stops at the first that fails.
func runSetup(steps []string) error {
	for _, s := range steps {
		fmt.Printf("e2e: set-up: %s\n", s)
		cmd := exec.Command(s)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("set-up %s (of %s): %w", s, strings.Join(steps, ", "), err)
		}
	}
	return nil
}
