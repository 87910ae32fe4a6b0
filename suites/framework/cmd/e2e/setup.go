package main

import (
	"fmt"
	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
	"os"
	"os/exec"
	"strings"
)

// setupSteps are the provider's set-up commands for modes (from the
// repository root, each idempotent and quick when done), so make e2e
// works as the first command on a fresh machine.
func setupSteps(provider string, modes []string) []string {
	p, ok := providers.Get(provider)
	if !ok {
		return nil
	}
	if n, ok := p.(clusters.SetupNeeder); ok {
		return n.SetupSteps(modes)
	}
	return nil
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
