package main

import "github.com/proxyproof/proxyproof/suites/framework"

// setupSteps are the provider's set-up commands for modes.
func setupSteps(provider string, modes []string) []string {
	return framework.SetupSteps(provider, modes)
}

// runSetup runs them, output streamed.
func runSetup(steps []string) error { return framework.RunSetup("e2e", steps) }
