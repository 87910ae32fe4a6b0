// Package ginkgo reads Ginkgo v2 JSON reports (ginkgo --json-report) and
// decodes this project's report entries from them. It mirrors the subset of
// github.com/onsi/ginkgo/v2/types it needs (that package pulls in a module
// go.mod does not list) and only reads: a report it cannot understand is an
// error naming the file, never a partial result.
package ginkgo
