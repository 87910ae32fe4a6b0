package census

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// File is the census file of a mode's run directory: a JSON array of
// Census, in the order taken (the suite writes it, the runner copies it
// into run.json).
const File = "census.json"

// Append adds c to dir's census file.
func Append(dir string, c Census) error {
	all, err := Load(dir)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(append(all, c), "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, File)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("census %s: %w", path, err)
	}
	return os.Rename(path+".tmp", path)
}

// Load reads dir's census file; none yet is no census.
func Load(dir string) ([]Census, error) {
	path := filepath.Join(dir, File)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("census %s: %w", path, err)
	}
	var all []Census
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("census %s: %w", path, err)
	}
	return all, nil
}

// String is the census as a table for a log, problems below it.
func (c Census) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode census (%s of the run):\n", c.When)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  NODE\tKERNEL\tMADE TO RUN\tDECLARED\tCARRIED\tLEFTOVERS")
	for _, n := range c.Nodes {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", n.Name, dash(n.Kernel), n.Expected, dash(n.Declared), dash(n.Carried), dash(strings.Join(n.Leftovers, ", ")))
	}
	w.Flush()
	for _, f := range c.Failures() {
		fmt.Fprintf(&b, "  FAIL %s\n", f)
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
