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
	suiteOK, err := o.runSuite(stdout)
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
	if !suiteOK {
		fmt.Fprintln(stdout, "certify: some specs FAILED: the bundle records them (report.html)")
		return Failed, nil
	}
	return Passed, nil
}

// runSuite runs make e2e's runner on every mode; a failing spec is a
// result (false), an error is a run that could not be done.
func (o *options) runSuite(stdout io.Writer) (bool, error) {
	args := []string{"--provider", o.provider, "--mode", o.mode, "--proxier", o.proxier, "--nodes", o.nodes,
		"--run-dir", o.runDir, "--command", o.command}
	if o.label != "" {
		args = append(args, "--", "--label-filter="+o.label)
	}
	code, err := execute(stdout, o.e2eBin, args...)
	switch {
	case err != nil:
		return false, fmt.Errorf("our suite: %w", err)
	case code == 2:
		return false, fmt.Errorf("our suite refused its parameters (e2e exit 2; its message is above)")
	case code != 0 && code != 1:
		return false, fmt.Errorf("our suite: e2e exit status %d", code)
	}
	if _, err := run.LoadMeta(o.runDir); err != nil {
		return false, fmt.Errorf("our suite left no run: %w", err)
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
