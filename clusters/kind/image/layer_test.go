package image

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tarEntry is what a test reads back from a layer.
type tarEntry struct {
	typ  byte
	mode int64
	link string
	data string
}

func readLayer(t *testing.T, l v1.Layer) (map[string]tarEntry, []string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]tarEntry{}
	var order []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got[h.Name] = tarEntry{typ: h.Typeflag, mode: h.Mode, link: h.Linkname, data: string(data)}
		order = append(order, h.Name)
	}
	return got, order
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLayerHoldsEachEntryWithItsTypeModeAndParentDirectories(t *testing.T) {
	bin := writeFile(t, t.TempDir(), "etcd", "#!fake etcd")
	l, err := Layer([]Entry{
		Bin("/usr/local/bin/etcd", bin),
		Symlink("/usr/sbin/iptables", "iptables-nft"),
		{Path: "/etc/motd", Mode: 0o644, Data: []byte("hello"), File: true},
		{Path: "/etc/empty", Mode: 0o600, File: true},
		tmpDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, order := readLayer(t, l)
	want := map[string]tarEntry{
		"etc/":               {typ: tar.TypeDir, mode: 0o755},
		"etc/empty":          {typ: tar.TypeReg, mode: 0o600},
		"etc/motd":           {typ: tar.TypeReg, mode: 0o644, data: "hello"},
		"tmp/":               {typ: tar.TypeDir, mode: 0o1777},
		"usr/":               {typ: tar.TypeDir, mode: 0o755},
		"usr/local/":         {typ: tar.TypeDir, mode: 0o755},
		"usr/local/bin/":     {typ: tar.TypeDir, mode: 0o755},
		"usr/local/bin/etcd": {typ: tar.TypeReg, mode: 0o755, data: "#!fake etcd"},
		"usr/sbin/":          {typ: tar.TypeDir, mode: 0o755},
		"usr/sbin/iptables":  {typ: tar.TypeSymlink, mode: 0o777, link: "iptables-nft"},
	}
	if len(got) != len(want) {
		t.Errorf("layer has %d entries %v, want %d", len(got), order, len(want))
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("layer lacks %s", name)
		} else if g != w {
			t.Errorf("%s = %+v, want %+v", name, g, w)
		}
	}
	seen := map[string]bool{}
	for _, n := range order {
		if parent := filepath.Dir(strings.TrimSuffix(n, "/")); parent != "." && !seen[parent+"/"] {
			t.Errorf("%s comes before its directory %s/", n, parent)
		}
		seen[n] = true
	}
}

func TestLayerDigestDependsOnlyOnTheEntries(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "b", "same bytes")
	digest := func(entries []Entry) v1.Hash {
		l, err := Layer(entries)
		if err != nil {
			t.Fatal(err)
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := digest([]Entry{Bin("/b", bin), Symlink("/c", "b")})
	// Listed in another order, the file touched again: the same layer.
	now := time.Now()
	if err := os.Chtimes(bin, now, now); err != nil {
		t.Fatal(err)
	}
	if b := digest([]Entry{Symlink("/c", "b"), Bin("/b", bin)}); a != b {
		t.Errorf("same entries gave digests %s and %s", a, b)
	}
	if c := digest([]Entry{Bin("/b", bin), Symlink("/c", "other")}); a == c {
		t.Errorf("a changed symlink kept digest %s", a)
	}
}

func TestLayerRefusesEntriesItCannotWrite(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "b", "x")
	tests := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"a relative path", []Entry{Bin("usr/bin/b", bin)}, `"usr/bin/b"`},
		{"an unclean path", []Entry{Bin("/usr//bin/b", bin)}, `"/usr//bin/b"`},
		{"one path twice", []Entry{Bin("/b", bin), Symlink("/b", "x")}, "/b: listed twice"},
		{"a file and a link at once", []Entry{{Path: "/b", Source: bin, Link: "x"}}, "exactly one"},
		{"nothing said", []Entry{{Path: "/b"}}, "exactly one"},
		{"a file under a file", []Entry{Bin("/b", bin), Bin("/b/c", bin)}, "parent /b is not a directory"},
		{"a missing source", []Entry{Bin("/b", filepath.Join(dir, "missing"))}, "missing"},
		{"a directory as source", []Entry{Bin("/b", dir)}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Layer(tt.entries)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Layer error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTreeEntriesKeepsFilesLinksAndModes(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	tool := writeFile(t, filepath.Join(root, "usr/sbin"), "xtables-nft-multi", "elf")
	if err := os.Chmod(tool, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("xtables-nft-multi", filepath.Join(root, "usr/sbin/iptables-nft")); err != nil {
		t.Fatal(err)
	}
	entries, err := TreeEntries(root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Layer(entries)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readLayer(t, l)
	if g := got["usr/sbin/xtables-nft-multi"]; g.mode != 0o755 || g.data != "elf" {
		t.Errorf("tool = %+v, want mode 0755 and its bytes", g)
	}
	if g := got["usr/sbin/iptables-nft"]; g.typ != tar.TypeSymlink || g.link != "xtables-nft-multi" {
		t.Errorf("link = %+v, want a symlink to xtables-nft-multi", g)
	}
}
