package ginkgo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Load reads a Ginkgo JSON report file. Ginkgo writes an array of reports
// (one per suite); a single report object is accepted too.
func Load(path string) ([]Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ginkgo report %s: %w", path, err)
	}
	reports, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("ginkgo report %s: %w", path, err)
	}
	return reports, nil
}

// Decode parses the bytes of a Ginkgo JSON report and checks that it is one.
func Decode(data []byte) ([]Report, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("file is empty, want a Ginkgo JSON report")
	}
	var reports []Report
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &reports); err != nil {
			return nil, jsonError(trimmed, err)
		}
	case '{':
		var r Report
		if err := json.Unmarshal(trimmed, &r); err != nil {
			return nil, jsonError(trimmed, err)
		}
		reports = []Report{r}
	default:
		return nil, fmt.Errorf("not JSON: starts with %q, want a Ginkgo JSON report", string(trimmed[:min(len(trimmed), 20)]))
	}
	for i, r := range reports {
		if r.SuitePath == "" && r.SuiteDescription == "" && r.StartTime.IsZero() {
			return nil, fmt.Errorf("report %d has no SuitePath, SuiteDescription or StartTime: not a Ginkgo v2 report", i)
		}
		for _, s := range r.SpecReports {
			if !slices.Contains(knownStates, s.State) {
				return nil, fmt.Errorf("suite %q spec %q: State %q, want one of %s", r.SuiteDescription, s.FullText(), s.State, strings.Join(knownStates, ", "))
			}
		}
	}
	return reports, nil
}

// jsonError says where in the file the JSON broke, in lines and columns.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Errorf("field %s at line %d, column %d: got JSON %s, want %s: %w", typ.Field, line, col, typ.Value, typ.Type, err)
	}
	return fmt.Errorf("decoding: %w", err)
}

func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}
