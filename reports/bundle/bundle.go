package bundle

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/reports/run"
)

// File is one member of the bundle.
type File struct {
	Name string
	Data []byte
}

// Member names, the conformance submission's where it has one.
const (
	ProductFile = "PRODUCT.yaml"
	JUnitFile   = "junit_01.xml"
	LogFile     = "e2e.log"
)

// notCertification starts versions.json's conformance statement of a
// bundle make report wrote: its PRODUCT.yaml is a template.
const notCertification = "not a certification run"

// Contents are what the bundle holds beside the run directory's files.
type Contents struct {
	// Report and JUnit are the run's rendered report.html and merged
	// JUnit XML.
	Report, JUnit []byte
	// Product fills PRODUCT.yaml; the zero Product leaves a template.
	Product ProductInfo
	// Conformance says whether upstream's conformance specs ran, and why
	// not (versions.json); empty: not a certification run.
	Conformance string
}

// Files are the members for a run, the manifest last: PRODUCT.yaml,
// junit_01.xml, e2e.log (the run log, when the runner left one),
// report.html, run.json, versions.json and SHA256SUMS.
func Files(r *run.Run, c Contents) ([]File, error) {
	if c.Conformance == "" {
		c.Conformance = notCertification + " (make report)"
	}
	v := VersionsOf(r, c.Conformance)
	versions, err := v.encode()
	if err != nil {
		return nil, err
	}
	meta, err := os.ReadFile(filepath.Join(r.Dir, run.MetaFile))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	files := []File{
		{Name: ProductFile, Data: []byte(productYAML(r, c.Product, v))},
		{Name: JUnitFile, Data: c.JUnit},
	}
	log, err := os.ReadFile(filepath.Join(r.Dir, run.LogFile))
	switch {
	case err == nil:
		files = append(files, File{Name: LogFile, Data: log})
	case !os.IsNotExist(err): // the log is optional
		return nil, fmt.Errorf("bundle: %w", err)
	}
	files = append(files, File{Name: run.ReportFile, Data: c.Report}, File{Name: run.MetaFile, Data: meta})
	files = append(files, File{Name: VersionsFile, Data: versions})
	return append(files, Manifest(files)), nil
}

// Product is PRODUCT.yaml as a template to fill in, with what the run
// recorded (make conformance writes it beside its results).
func Product(r *run.Run) string {
	return productYAML(r, ProductInfo{}, VersionsOf(r, ""))
}

// productYAML is PRODUCT.yaml in the shape of the Kubernetes conformance
// submissions: the vendor's fields (a template to fill in when p is
// empty), then what the run recorded, which verify-bundle checks.
func productYAML(r *run.Run, p ProductInfo, v Versions) string {
	var modes, verdicts []string
	for _, m := range r.Modes {
		modes = append(modes, m.Name)
		verdicts = append(verdicts, m.Counts.Verdict(m.Name))
	}
	var b strings.Builder
	if p == (ProductInfo{}) {
		b.WriteString("# PRODUCT.yaml: fill in the empty fields and submit this bundle.\n")
		p.Name, p.Version, p.Type = r.Meta.Proxier.Name, r.Meta.Proxier.Version, "kube-proxy replacement"
	} else {
		b.WriteString("# PRODUCT.yaml of a proxyproof certification run (make certify).\n")
	}
	b.WriteString("# The run's results are in junit_01.xml, e2e.log and report.html beside this file.\n")
	field := func(k, v, comment string) {
		fmt.Fprintf(&b, "%s: %s", k, strconv.Quote(v))
		if comment != "" {
			b.WriteString("  # " + comment)
		}
		b.WriteByte('\n')
	}
	for _, f := range ProductFields {
		field(f.Key, f.Value(p), f.Comment)
	}
	b.WriteString("# Recorded by the run (do not edit; verify-bundle checks it against run.json):\n")
	b.WriteString("tested:\n")
	field("  run", r.Meta.Name, "")
	field("  suite", v.Suite, "the proxyproof commit")
	field("  kubernetes_version", v.Kubernetes, "")
	field("  proxier", strings.TrimSpace(v.Proxier.Name+" "+v.Proxier.Version), "")
	field("  provider", v.Provider, "")
	field("  kernel", v.RunnerKernel, "the runner's")
	field("  conformance", v.Conformance, "upstream's sig-network specs")
	fmt.Fprintf(&b, "  modes: [%s]\n", quoteAll(modes))
	fmt.Fprintf(&b, "  verdicts: [%s]\n", quoteAll(verdicts))
	return b.String()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// Write writes files as a gzipped tar at path, through a temporary file
// renamed into place so a reader never sees a truncated archive.
func Write(path string, files []File, modTime time.Time) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bundle-*.tar.gz")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), ModTime: modTime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("bundle %s: %s: %w", path, f.Name, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("bundle %s: %s: %w", path, f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("bundle %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("bundle %s: %w", path, err)
	}
	return nil
}

// WriteDir writes files as the directory dir, which must not exist yet
// (or be empty): through a temporary sibling renamed into place, so a
// reader never sees half a bundle.
func WriteDir(dir string, files []File) (err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".bundle-*")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.Name), f.Data, 0o644); err != nil {
			return fmt.Errorf("bundle %s: %w", dir, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("bundle %s: %w (it must not exist yet)", dir, err)
	}
	return nil
}
