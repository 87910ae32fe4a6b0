package clusters

import (
	"fmt"
	"os"
)

// Executable is nil for an existing executable file, as a proxier given by
// path (Spec.Proxier, PROXIER=) must be; the error says what the path is
// instead. Every provider and the parameter check ask the same question.
func Executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: not an executable file", path)
	}
	return nil
}
