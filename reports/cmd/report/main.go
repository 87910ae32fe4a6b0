// Command report turns a suite run directory into report.html, junit.xml
// and the certification bundle, compares two run directories, or
// verifies a bundle:
//
//	report [--out DIR] [--product FILE --conformance TEXT --bundle-dir DIR] RUN
//	report compare [--out FILE] [--mode-a M --mode-b M] [--threshold PCT] RUN_A RUN_B
//	report verify BUNDLE
//
// It writes nothing when the run directory cannot be read completely.
// Exit status: 0 done (verify: the bundle verified), 1 an error (verify:
// the bundle does not verify; the message names the first file or claim
// that does not match), 2 (verify) BUNDLE names no directory or .tar.gz
// to verify.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/reports/bundle"
	"github.com/proxyproof/proxyproof/reports/compare"
	"github.com/proxyproof/proxyproof/reports/html"
	"github.com/proxyproof/proxyproof/reports/junit"
	"github.com/proxyproof/proxyproof/reports/run"
)

// Output names inside the output directory.
const (
	ReportFile = run.ReportFile
	JUnitFile  = "junit.xml"
	BundleFile = "bundle.tar.gz"
)

func main() {
	if err := Main(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		var bad *bundle.BadInput
		if errors.As(err, &bad) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// Main is the command without the process: tests call it.
func Main(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return compareMain(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "verify" {
		return verifyMain(args[1:], stdout)
	}
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	out := fs.String("out", "", "directory for report.html, junit.xml and bundle.tar.gz (default: the run directory)")
	productFile := fs.String("product", "", "PRODUCT.yaml's vendor fields (a YAML file with its keys); default a template to fill in")
	conformance := fs.String("conformance", "", "whether upstream's conformance specs ran, and why not (make certify)")
	bundleDir := fs.String("bundle-dir", "", "also write the bundle's files as this directory, which must not exist yet")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: report [--out DIR] RUN_DIR, report compare RUN_A RUN_B, or report verify BUNDLE")
	}
	dir := fs.Arg(0)
	if *out == "" {
		*out = dir
	}
	contents := bundle.Contents{Conformance: *conformance}
	if *productFile != "" {
		p, err := bundle.ReadProductFile(*productFile)
		if err != nil {
			return err
		}
		if contents.Product = p; p.Check() != nil {
			return fmt.Errorf("--product %s: %w", *productFile, p.Check())
		}
	}
	r, err := run.Load(dir)
	if err != nil {
		return err
	}
	var page, xml bytes.Buffer
	if err := html.Render(&page, r); err != nil {
		return err
	}
	if err := junit.Write(&xml, junit.FromRun(r)); err != nil {
		return err
	}
	contents.Report, contents.JUnit = page.Bytes(), xml.Bytes()
	files, err := bundle.Files(r, contents)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("output directory %s: %w", *out, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{ReportFile, page.Bytes()}, {JUnitFile, xml.Bytes()}} {
		if err := writeFile(filepath.Join(*out, f.name), f.data); err != nil {
			return err
		}
	}
	if err := bundle.Write(filepath.Join(*out, BundleFile), files, time.Now()); err != nil {
		return err
	}
	if *bundleDir != "" {
		if err := bundle.WriteDir(*bundleDir, files); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/\n", *bundleDir)
	}
	for _, m := range r.Modes {
		fmt.Fprintln(stdout, m.Counts.Verdict(m.Name))
	}
	for _, name := range []string{ReportFile, JUnitFile, BundleFile} {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, name))
	}
	return nil
}

func compareMain(args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("report compare", pflag.ContinueOnError)
	out := fs.String("out", "compare.html", "the compare page to write")
	var opt compare.Options
	fs.StringVar(&opt.ModeA, "mode-a", "", "compare this mode of RUN_A ...")
	fs.StringVar(&opt.ModeB, "mode-b", "", "... with this mode of RUN_B (default: every mode both runs have)")
	fs.Float64Var(&opt.Threshold, "threshold", compare.DefaultThreshold, "percent a figure must move to count as moved")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("usage: report compare [--out FILE] RUN_A RUN_B")
	}
	a, err := run.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := run.Load(fs.Arg(1))
	if err != nil {
		return err
	}
	d, err := compare.Runs(a, b, opt)
	if err != nil {
		return err
	}
	var page bytes.Buffer
	if err := html.RenderCompare(&page, d); err != nil {
		return err
	}
	if err := writeFile(*out, page.Bytes()); err != nil {
		return err
	}
	if err := d.WriteText(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

// verifyMain checks a bundle (bundle.Verify) and says what it holds.
func verifyMain(args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] == "" {
		return &bundle.BadInput{Err: fmt.Errorf("usage: report verify BUNDLE (a bundle directory or its .tar.gz)")}
	}
	v, err := bundle.Verify(args[0])
	if err != nil {
		var m *bundle.Mismatch
		if errors.As(err, &m) {
			return fmt.Errorf("bundle %s does NOT verify: %w", args[0], err)
		}
		return err
	}
	fmt.Fprintf(stdout, "bundle %s verified: %d files match %s; report.html and %s agree on %d specs; modes %s; upstream conformance: %s\n",
		args[0], v.Files-1, bundle.ManifestFile, bundle.JUnitFile, v.Specs, strings.Join(v.Modes, ", "), v.Conformance)
	return nil
}

// writeFile replaces path whole: a reader (or a CI artifact upload) never
// sees half a page.
func writeFile(path string, data []byte) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
