// Package ci holds the ready-to-copy CI definitions of the PR gate (this
// directory's gitlab-ci.yml and .github/workflows/proxyproof-gate.yml); its
// test lints them and checks that every command they run is a Make target.
package ci
