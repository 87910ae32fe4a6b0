// Command certify is what `make certify` runs: a vendor's certification
// in one command. It composes what exists: upstream's network conformance
// specs (make conformance's runner), our suite (make e2e's runner) on
// every mode the cluster supports, then the report's bundle with
// PRODUCT.yaml filled from the PRODUCT_* parameters, written as a
// directory and a tarball and verified before it says done.
//
// Exit status: 0 the bundle is written and every spec passed, 1 the bundle
// is written and some spec failed (it is the evidence either way), 2 no
// bundle: bad parameters (refused before anything runs) or a run that
// could not be done.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/bundle"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/certify"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// Exit statuses.
const (
	Passed  = 0
	Failed  = 1
	NotDone = 2
)

// Names inside the run directory.
const (
	BundleDir   = "bundle"
	TarballFile = "bundle.tar.gz"
	ProductFile = "product.yaml" // the PRODUCT_* parameters as given
)

func main() {
	os.Exit(Main(os.Args[1:], os.LookupEnv, os.Stdout))
}

// Main is the command without the process; it returns the exit status.
func Main(args []string, lookup func(string) (string, bool), stdout io.Writer) int {
	o, err := parse(args, lookup)
	if err != nil {
		fmt.Fprintf(stdout, "certify: %v\ncertify: nothing was run (exit 2)\n", err)
		return NotDone
	}
	status, err := o.certify(stdout)
	if err != nil {
		fmt.Fprintf(stdout, "certify: %v\ncertify: no bundle (exit 2)\n", err)
		return NotDone
	}
	return status
}

// certify runs the suites, then writes and verifies the bundle.
func (o *options) certify(stdout io.Writer) (int, error) {
	began := time.Now()
	fmt.Fprintf(stdout, "certify: run directory %s; provider %s; upstream conformance: %s\n", o.runDir, o.provider, o.conformance)
	ok, err := o.runAll(stdout)
	if err != nil {
		return NotDone, err
	}
	if err := o.writeProduct(); err != nil {
		return NotDone, err
	}
	dir := filepath.Join(o.runDir, BundleDir)
	code, err := execute(stdout, o.reportBin, "--product", filepath.Join(o.runDir, ProductFile),
		"--conformance", o.conformance, "--bundle-dir", dir, o.runDir)
	if err != nil || code != 0 {
		return NotDone, fmt.Errorf("the report's bundle of %s: exit %d %v", o.runDir, code, err)
	}
	tarball := filepath.Join(o.runDir, TarballFile)
	for _, b := range []string{dir, tarball} {
		if code, err := execute(stdout, o.reportBin, "verify", b); err != nil || code != 0 {
			return NotDone, fmt.Errorf("the bundle just written does not verify (%s: exit %d %v)", b, code, err)
		}
	}
	fmt.Fprintf(stdout, "certify: took %s; bundle %s/ and %s\n", time.Since(began).Round(time.Second), dir, tarball)
	if !ok {
		fmt.Fprintln(stdout, "certify: some specs FAILED: the bundle records them (report.html)")
		return Failed, nil
	}
	return Passed, nil
}

// runAll runs our suite and, where the provider has a kubelet,
// upstream's conformance specs, each into its own run directory, and
// merges the two into the certify run directory. ok is false when a spec
// failed; an error is a run that could not be done.
func (o *options) runAll(stdout io.Writer) (bool, error) {
	if !o.upstream {
		return o.runner(stdout, "our suite", o.e2eBin, o.runDir, o.suiteArgs())
	}
	suite, upstream := filepath.Join(o.runDir, certify.SuiteDir), filepath.Join(o.runDir, certify.UpstreamDir)
	oursOK, err := o.runner(stdout, "our suite", o.e2eBin, suite, o.suiteArgs())
	if err != nil {
		return false, err
	}
	// Its clusters are named <name>-<mode>: certify's own, beside any
	// make conformance run on the same machine.
	theirsOK, err := o.runner(stdout, "upstream's conformance specs", o.conformanceBin, upstream, []string{"--name", "certify"})
	if err != nil {
		return false, err
	}
	if err := certify.Merge(o.runDir, suite, upstream, "certify-"+filepath.Base(o.runDir), o.command); err != nil {
		return false, fmt.Errorf("merging %s and %s: %w", suite, upstream, err)
	}
	return oursOK && theirsOK, nil
}

// suiteArgs are our suite's: its label filter.
func (o *options) suiteArgs() []string {
	if o.label == "" {
		return nil
	}
	return []string{"--", "--label-filter=" + o.label}
}

// runner runs one of the runners (make e2e's, make conformance's) into
// runDir; both exit 0 passed, 1 failed, 2 refused their parameters.
func (o *options) runner(stdout io.Writer, what, bin, runDir string, extra []string) (bool, error) {
	args := append([]string{"--provider", o.provider, "--mode", o.mode, "--proxier", o.proxier, "--nodes", o.nodes,
		"--run-dir", runDir, "--command", o.command}, extra...)
	code, err := execute(stdout, bin, args...)
	switch {
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	case code == 2:
		return false, fmt.Errorf("%s: refused its parameters (%s exit 2; its message is above)", what, filepath.Base(bin))
	case code != 0 && code != 1:
		return false, fmt.Errorf("%s: %s exit status %d", what, filepath.Base(bin), code)
	}
	if _, err := run.LoadMeta(runDir); err != nil {
		return false, fmt.Errorf("%s left no run: %w", what, err)
	}
	return code == 0, nil
}

// writeProduct keeps the product parameters in the run directory, where
// the report reads them.
func (o *options) writeProduct() error {
	var b strings.Builder
	for _, f := range bundle.ProductFields {
		fmt.Fprintf(&b, "%s: %q\n", f.Key, f.Value(o.product))
	}
	return os.WriteFile(filepath.Join(o.runDir, ProductFile), []byte(b.String()), 0o644)
}

// execute runs one of the runners (framework.RunProgram).
func execute(stdout io.Writer, name string, args ...string) (int, error) {
	return framework.RunProgram(stdout, "certify", name, args...)
}
