//go:build e2e

package services

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyproof/proxyproof/suites/framework"
)

// f is the mode's cluster, shared by every spec: one cluster per mode keeps
// the whole suite within minutes.
var f *framework.Framework

func TestServices(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Services")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	p, err := framework.ParamsFromOS()
	Expect(err).NotTo(HaveOccurred(), "the suite runs under make e2e, which sets MODE and RUN_DIR")
	f, err = framework.Setup(ctx, p)
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(8*time.Minute)) // the cluster, then the start census

// Teardown takes the end census first (suites/census).
var _ = AfterSuite(func(ctx SpecContext) {
	Expect(f.Teardown(ctx)).To(Succeed())
}, NodeTimeout(5*time.Minute))

// On failure, keep every node's rules next to the report.
var _ = JustAfterEach(func() {
	if r := CurrentSpecReport(); r.Failed() && f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f.DumpRules(ctx, r.FullText())
	}
})
