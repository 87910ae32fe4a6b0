package bundle

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Mismatch is a verification failure: the first file or claim of the
// bundle that does not match, named.
type Mismatch struct {
	File string
	Msg  string
}

func (m *Mismatch) Error() string { return m.File + ": " + m.Msg }

// BadInput is a bundle path that names nothing to verify: missing,
// unreadable, neither a directory nor a .tar.gz.
type BadInput struct{ Err error }

func (b *BadInput) Error() string { return b.Err.Error() }
func (b *BadInput) Unwrap() error { return b.Err }

// Required are the members every bundle has (e2e.log too: make certify
// always has a run log).
var Required = []string{ProductFile, JUnitFile, LogFile, "report.html", "run.json", VersionsFile}

// Verified is what a bundle that verified holds, for the one-line answer.
type Verified struct {
	Files       int
	Modes       []string
	Specs       int
	Conformance string
}

// Verify checks a bundle directory or .tar.gz: the manifest (every file
// listed, no other file, every hash), that report.html and junit_01.xml
// show the same specs with the same outcomes, and that the claims of
// versions.json and PRODUCT.yaml match run.json. The error is a
// *Mismatch naming the first thing that does not match, or a *BadInput.
func Verify(path string) (Verified, error) {
	info, err := os.Stat(path)
	if err != nil {
		return Verified{}, &BadInput{fmt.Errorf("BUNDLE=%s: %w", path, err)}
	}
	var files map[string][]byte
	switch {
	case info.IsDir():
		files, err = readDir(path)
	case strings.HasSuffix(path, ".tar.gz") || strings.HasSuffix(path, ".tgz"):
		files, err = readTarball(path)
	default:
		return Verified{}, &BadInput{fmt.Errorf("BUNDLE=%s: want a bundle directory or its .tar.gz", path)}
	}
	if err != nil {
		return Verified{}, err
	}
	return verifyFiles(files)
}

func readDir(dir string) (map[string][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, &BadInput{fmt.Errorf("BUNDLE=%s: %w", dir, err)}
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			return nil, &Mismatch{e.Name(), "not a regular file: a bundle holds only the files its manifest lists"}
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, &BadInput{fmt.Errorf("BUNDLE=%s: %w", dir, err)}
		}
		files[e.Name()] = data
	}
	return files, nil
}

// readTarball reads the members of a bundle archive; a damaged archive
// is a verification failure of the archive itself.
func readTarball(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &BadInput{fmt.Errorf("BUNDLE=%s: %w", path, err)}
	}
	defer f.Close()
	name := filepath.Base(path)
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, &Mismatch{name, fmt.Sprintf("not a gzip archive: %v", err)}
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &Mismatch{name, fmt.Sprintf("damaged archive: %v", err)}
		}
		if h.Typeflag != tar.TypeReg || h.Name != filepath.Base(h.Name) {
			return nil, &Mismatch{name + ":" + h.Name, "not a plain file at the archive's top: a bundle holds only the files its manifest lists"}
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, &Mismatch{name + ":" + h.Name, fmt.Sprintf("damaged archive: %v", err)}
		}
		files[h.Name] = data
	}
	// gzip checks its CRC only at the end of the stream.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, &Mismatch{name, fmt.Sprintf("damaged archive: %v", err)}
	}
	return files, nil
}

func verifyFiles(files map[string][]byte) (Verified, error) {
	manifest, ok := files[ManifestFile]
	if !ok {
		return Verified{}, &Mismatch{ManifestFile, "missing: the bundle has no checksum manifest"}
	}
	entries, err := ParseManifest(manifest)
	if err != nil {
		return Verified{}, &Mismatch{ManifestFile, strings.TrimPrefix(err.Error(), ManifestFile+": ")}
	}
	listed := map[string]bool{ManifestFile: true}
	for _, e := range entries {
		listed[e.Name] = true
		data, ok := files[e.Name]
		if !ok {
			return Verified{}, &Mismatch{e.Name, fmt.Sprintf("listed on %s line %d but not in the bundle", ManifestFile, e.Line)}
		}
		if got := sum(data); got != e.Sum {
			return Verified{}, &Mismatch{e.Name, fmt.Sprintf("changed after the bundle was written: sha256 %s, %s line %d records %s", got, ManifestFile, e.Line, e.Sum)}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !listed[name] {
			return Verified{}, &Mismatch{name, "not listed in " + ManifestFile + ": added after the bundle was written"}
		}
	}
	for _, name := range Required {
		if !listed[name] {
			return Verified{}, &Mismatch{name, "missing: every bundle has it (" + strings.Join(Required, ", ") + ")"}
		}
	}
	v := Verified{Files: len(files)}
	specs, err := agree(files)
	if err != nil {
		return v, err
	}
	v.Specs = specs
	return checkClaims(files, v)
}
