// Package services is the Service conformance suite (Ginkgo v2): what a
// Service must do, checked the same way on every proxier mode. Its specs
// are built only with -tags e2e (make e2e), so plain `go test ./...` never
// brings up a cluster; the suite must never know which proxier it runs
// against.
package services
