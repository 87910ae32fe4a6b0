package framework

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
)

// SetupSteps are the provider's set-up commands for the clusters of specs
// (from the repository root, each idempotent and quick when done), so make
// e2e and make validate work as the first command on a fresh machine.
func SetupSteps(provider string, specs []clusters.Spec) []string {
	p, ok := providers.Get(provider)
	if !ok {
		return nil
	}
	if n, ok := p.(clusters.SetupNeeder); ok {
		return n.SetupSteps(specs)
	}
	return nil
}

// SpecsOf are the cluster specs of params, named e2e (set-up reads only
// their nodes).
func SpecsOf(params []Params) []clusters.Spec {
	var specs []clusters.Spec
	for _, p := range params {
		specs = append(specs, p.Spec("e2e"))
	}
	return specs
}

// RunSetup runs each step with its output streamed, so a long build is
// seen to progress, and stops at the first that fails. who prefixes the
// lines (the command's name).
func RunSetup(who string, steps []string) error {
	for _, s := range steps {
		fmt.Printf("%s: set-up: %s\n", who, s)
		cmd := exec.Command(s)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("set-up %s (of %s): %w", s, strings.Join(steps, ", "), err)
		}
	}
	return nil
}
