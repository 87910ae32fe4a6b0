package image

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Entry is one file, directory or symlink of a layer. Exactly one of
// Source, Data (with File), Link or Dir says what it is.
type Entry struct {
	// Path is the absolute path in the image, e.g. "/usr/local/bin/etcd".
	Path string
	// Mode holds the permission bits (0o755); the type comes from the
	// fields below.
	Mode fs.FileMode
	// Source is a host file copied in as a regular file.
	Source string
	// Data is the content of a regular file that has no Source; File
	// marks Data as meant (an empty file is valid).
	Data []byte
	File bool
	// Link is a symlink's target.
	Link string
	// Dir makes a directory.
	Dir bool
}

// Bin is a regular executable file copied from the host.
func Bin(imagePath, hostPath string) Entry {
	return Entry{Path: imagePath, Mode: 0o755, Source: hostPath}
}

// Symlink is a symbolic link at imagePath pointing at target.
func Symlink(imagePath, target string) Entry {
	return Entry{Path: imagePath, Link: target}
}

// epoch is every entry's modification time: the same inputs give the same
// layer digest.
var epoch = time.Unix(0, 0).UTC()

func (e Entry) validate() error {
	if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == "/" {
		return fmt.Errorf("layer entry %q: path must be absolute and clean, not /", e.Path)
	}
	kinds := 0
	for _, set := range []bool{e.Source != "", e.File || e.Data != nil, e.Link != "", e.Dir} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("layer entry %s: set exactly one of Source, Data, Link, Dir", e.Path)
	}
	return nil
}

// Layer makes a layer of entries, adding the parent directories they do
// not list (0755). The tar is written again each time the layer is read,
// from the host files, so a layer of large binaries costs no memory; the
// files must not change while the image is written.
func Layer(entries []Entry) (v1.Layer, error) {
	all, err := withParents(entries)
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		if e.Source == "" {
			continue
		}
		st, err := os.Stat(e.Source)
		if err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("layer entry %s: source %s is not a regular file", e.Path, e.Source)
		}
	}
	opener := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(pw, all)) }()
		return pr, nil
	}
	// Binaries dominate: the fastest gzip level costs little size.
	return tarball.LayerFromOpener(opener, tarball.WithCompressionLevel(gzip.BestSpeed))
}

// withParents validates entries and returns them sorted by path, parents
// first, with the missing parent directories added. Two entries for one
// path are an error.
func withParents(entries []Entry) ([]Entry, error) {
	byPath := map[string]Entry{}
	for _, e := range entries {
		if err := e.validate(); err != nil {
			return nil, err
		}
		if _, dup := byPath[e.Path]; dup {
			return nil, fmt.Errorf("layer entry %s: listed twice", e.Path)
		}
		byPath[e.Path] = e
	}
	for _, e := range entries {
		for dir := path.Dir(e.Path); dir != "/"; dir = path.Dir(dir) {
			if p, ok := byPath[dir]; ok {
				if !p.Dir {
					return nil, fmt.Errorf("layer entry %s: parent %s is not a directory", e.Path, dir)
				}
				continue
			}
			byPath[dir] = Entry{Path: dir, Mode: 0o755, Dir: true}
		}
	}
	all := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return all, nil
}

func writeTar(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, e Entry) error {
	h := &tar.Header{
		Name:    strings.TrimPrefix(e.Path, "/"),
		Mode:    int64(e.Mode.Perm()),
		ModTime: epoch,
		Format:  tar.FormatPAX,
	}
	// /tmp needs its sticky bit; Go's fs.ModeSticky is not tar's 01000.
	if e.Mode&fs.ModeSticky != 0 {
		h.Mode |= 0o1000
	}
	switch {
	case e.Dir:
		h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		return tw.WriteHeader(h)
	case e.Link != "":
		h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.Link, 0o777
		return tw.WriteHeader(h)
	case e.Source != "":
		f, err := os.Open(e.Source)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		n, err := io.Copy(tw, f)
		if err == nil && n != st.Size() {
			err = fmt.Errorf("%s changed size while read (%d of %d bytes)", e.Source, n, st.Size())
		}
		return err
	default:
		h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(e.Data)
		return err
	}
}

// TreeEntries lists a host directory tree (e.g. Debian packages unpacked
// with dpkg-deb -x) as entries under the image's root: regular files,
// directories and symlinks with their permission bits. Anything else
// (devices, sockets) is an error naming it.
func TreeEntries(root string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Path: "/" + filepath.ToSlash(rel), Mode: info.Mode().Perm() | info.Mode()&fs.ModeSticky}
		switch {
		case d.IsDir():
			e.Dir = true
		case info.Mode()&fs.ModeSymlink != 0:
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			e.Source = p
		default:
			return fmt.Errorf("%s: %v is neither a file, a directory nor a symlink", p, info.Mode().Type())
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tree %s: %w", root, err)
	}
	return out, nil
}
