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

// Files are the members for a run, given its rendered report and JUnit XML.
func Files(r *run.Run, reportHTML, junitXML []byte) ([]File, error) {
	files := []File{
		{Name: "junit.xml", Data: junitXML},
		{Name: run.ReportFile, Data: reportHTML},
		{Name: "PRODUCT.yaml", Data: []byte(Product(r))},
	}
	for _, name := range []string{run.MetaFile, run.LogFile} {
		data, err := os.ReadFile(filepath.Join(r.Dir, name))
		if os.IsNotExist(err) && name == run.LogFile {
			continue // the log is optional; run.json was read by run.Load
		}
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		files = append(files, File{Name: name, Data: data})
	}
	return files, nil
}

// Product is a PRODUCT.yaml template in the shape of the Kubernetes
// conformance submissions, with what the run knows filled in.
func Product(r *run.Run) string {
	var modes, verdicts []string
	for _, m := range r.Modes {
		modes = append(modes, m.Name)
		verdicts = append(verdicts, m.Counts.Verdict(m.Name))
	}
	var b strings.Builder
	b.WriteString("# PRODUCT.yaml: fill in the empty fields and submit this bundle.\n")
	b.WriteString("# The run's results are in junit.xml and report.html beside this file.\n")
	field := func(k, v, comment string) {
		fmt.Fprintf(&b, "%s: %s", k, strconv.Quote(v))
		if comment != "" {
			b.WriteString("  # " + comment)
		}
		b.WriteByte('\n')
	}
	field("vendor", "", "your company")
	field("name", r.Meta.Proxier.Name, "product name")
	field("version", r.Meta.Proxier.Version, "")
	field("type", "kube-proxy replacement", "")
	field("description", "", "one line")
	field("website_url", "", "")
	field("repo_url", "", "")
	field("documentation_url", "", "")
	field("product_logo_url", "", "")
	field("contact_email_address", "", "")
	b.WriteString("# Recorded by the run (do not edit):\n")
	b.WriteString("tested:\n")
	field("  run", r.Meta.Name, "")
	field("  kubernetes_version", r.Meta.KubernetesVersion, "")
	field("  kernel", r.Meta.Kernel, "")
	field("  provider", r.Meta.Provider, "")
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
