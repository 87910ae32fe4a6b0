package main

import (
	"fmt"
	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
	"github.com/proxyproof/proxyproof/suites/framework"
	"os"
	"os/exec"
	"strings"
)

// setupSteps are the provider's set-up commands for the clusters of params
// (from the repository root, each idempotent and quick when done), so
// make e2e works as the first command on a fresh machine.
func setupSteps(params []framework.Params) []string {
	p, ok := providers.Get(params[0].Provider)
	if !ok {
		return nil
	}
	n, ok := p.(clusters.SetupNeeder)
	if !ok {
		return nil
	}
	var specs []clusters.Spec
	for _, m := range params {
		specs = append(specs, m.ClusterSpec("e2e"))
	}
	return n.SetupSteps(specs)
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
