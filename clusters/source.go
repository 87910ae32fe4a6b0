package clusters

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// ModulePath is this repository's Go module.
const ModulePath = "github.com/proxyproof/proxyproof"

// SourceDir walks up from the working directory to the proxyproof module
// root: the checkout providers build their programs from.
func SourceDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s checkout above the working directory", ModulePath)
		}
		dir = parent
	}
}
