package terraform

import (
	"os"
	"path/filepath"
	"testing"
)

const header = "# This file is maintained automatically by \"terraform init\".\n# Manual edits may be lost in future updates.\n\n"

const ourBlock = `provider "proxyproof.local/proxyproof/proxyproof" {
  version = "0.1.0"
  hashes = [
    "h1:ALX42cAOX/TzYvOKmAdRIRmZG7x95M4KbvdawLnBYyU=",
  ]
}
`

const otherBlock = `provider "registry.opentofu.org/hashicorp/null" {
  version = "3.2.0"
  hashes = [
    "h1:abc=",
  ]
}
`

func TestInitLeavesNoEntryOfOurProviderInTheModule(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after string
		existed       bool
		want          string // "" = no file
	}{
		{"a lock file init made only for ours is removed", "", header + ourBlock, false, ""},
		{"ours is taken out of a lock file with other providers", "", header + ourBlock + "\n" + otherBlock, false, header + otherBlock},
		{"a lock file init did not change stays", header + otherBlock, header + otherBlock, true, header + otherBlock},
		{"ours is taken out of the user's lock file", header + otherBlock, header + otherBlock + "\n" + ourBlock, true, header + otherBlock + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, lockFile)
			if err := os.WriteFile(path, []byte(tc.after), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := keepLockFile(dir, []byte(tc.before), tc.existed); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("lock file left:\n%s", b)
				}
				return
			}
			if string(b) != tc.want {
				t.Fatalf("lock file:\n%s\nwant:\n%s", b, tc.want)
			}
		})
	}
}
