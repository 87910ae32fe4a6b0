package main

import "github.com/proxyproof/proxyproof/suites/framework"

// setupSteps are the provider's set-up commands for the clusters of params.
func setupSteps(params []framework.Params) []string {
	if len(params) == 0 {
		return nil
	}
	return framework.SetupSteps(params[0].Provider, framework.SpecsOf(params))
}

// runSetup runs them, output streamed.
func runSetup(steps []string) error { return framework.RunSetup("e2e", steps) }
