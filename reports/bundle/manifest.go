package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// ManifestFile lists the sha256 of every other file of the bundle, one
// "<hex>  <name>" line each (sha256sum -c reads it), then a comment line
// with the sha256 of the lines above it: a changed byte in the manifest
// itself is then named as the manifest's, not as the file whose line it
// touched.
const ManifestFile = "SHA256SUMS"

// selfPrefix starts the manifest's last line; sha256sum -c skips lines
// starting with '#'.
const selfPrefix = "# sha256 of the lines above: "

// ManifestEntry is one line of the manifest.
type ManifestEntry struct {
	Name, Sum string
	Line      int
}

// Manifest is the manifest of files, in their order.
func Manifest(files []File) File {
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", sum(f.Data), f.Name)
	}
	fmt.Fprintf(&b, "%s%s\n", selfPrefix, sum(b.Bytes()))
	return File{Name: ManifestFile, Data: b.Bytes()}
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

var entryLine = regexp.MustCompile(`^([0-9a-f]{64})  ([^/\s][^/]*)$`)

// ParseManifest reads a manifest, checking its own digest first; errors
// name the manifest and the line.
func ParseManifest(data []byte) ([]ManifestEntry, error) {
	body, last, ok := cutLastLine(data)
	if !ok || !strings.HasPrefix(last, selfPrefix) {
		return nil, fmt.Errorf("%s: its last line is not %q<sha256>: the manifest was cut or changed", ManifestFile, selfPrefix)
	}
	if want, got := strings.TrimPrefix(last, selfPrefix), sum(body); want != got {
		return nil, fmt.Errorf("%s: changed after it was written (its lines hash to %s, its last line records %s)", ManifestFile, got, want)
	}
	var out []ManifestEntry
	seen := map[string]int{}
	for i, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		if line == "" && len(body) == 0 {
			break
		}
		m := entryLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s line %d: %q is not \"<sha256 hex>  <file name>\"", ManifestFile, i+1, line)
		}
		if prev, dup := seen[m[2]]; dup {
			return nil, fmt.Errorf("%s line %d: %s is listed again (first on line %d)", ManifestFile, i+1, m[2], prev)
		}
		seen[m[2]] = i + 1
		out = append(out, ManifestEntry{Name: m[2], Sum: m[1], Line: i + 1})
	}
	return out, nil
}

// cutLastLine splits data ending in "\n" into what precedes its last
// line and that line.
func cutLastLine(data []byte) (body []byte, last string, ok bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, "", false
	}
	i := bytes.LastIndexByte(data[:len(data)-1], '\n')
	return data[:i+1], string(data[i+1 : len(data)-1]), true
}
