package terraform

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// lockFile is the dependency lock file init writes into the module's
// directory (neither terraform nor tofu can put it elsewhere).
const lockFile = ".terraform.lock.hcl"

// ourLockBlock is our provider's block in a lock file, as init writes it
// (machine-written: a provider "ADDR" { line, its body, a "}" line).
var ourLockBlock = regexp.MustCompile(`(?ms)^provider "` + regexp.QuoteMeta(PluginAddress) + `" \{\n.*?^\}\n\n?`)

// keepLockFile undoes what init did to TF_DIR's lock file for our
// provider: the entry records the hash of this run's build, which the
// next build (any source change) would contradict, and our provider is a
// dev override, never checked against it. Entries of other providers stay,
// as terraform init leaves them; a lock file that held nothing before and
// holds only our entry now is removed.
func keepLockFile(moduleDir string, before []byte, existed bool) error {
	path := filepath.Join(moduleDir, lockFile)
	now, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("module %s: %w", moduleDir, err)
	}
	if existed && bytes.Equal(now, before) {
		return nil
	}
	stripped := ourLockBlock.ReplaceAll(now, nil)
	if !existed && len(bytes.TrimSpace(stripLockHeader(stripped))) == 0 {
		return os.Remove(path)
	}
	if bytes.Equal(stripped, now) {
		return nil
	}
	return os.WriteFile(path, stripped, 0o644)
}

// stripLockHeader drops the comment lines init puts on top.
func stripLockHeader(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// readLockFile is the lock file before init, and whether there was one.
func readLockFile(moduleDir string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(moduleDir, lockFile))
	return b, err == nil
}
