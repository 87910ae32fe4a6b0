package main

import (
	"fmt"
	"strings"

	"github.com/google/shlex"
)

// splitArgs turns ARGS, passed whole through the environment so the shell
// never reads it (`ARGS='--label-filter=a || b'` in a recipe would run
// `b`), into arguments. Quotes group as in a shell; beyond that a word
// that does not start with '-' continues the value of the flag before it,
// so a label filter or focus with spaces needs no quotes of its own:
//
//	--label-filter=scheduler || churn --focus UDP
//	-> [--label-filter=scheduler || churn] [--focus] [UDP]
func splitArgs(s string) ([]string, error) {
	words, err := shlex.Split(s)
	if err != nil {
		return nil, fmt.Errorf("Ginkgo flags with balanced quotes (%w)", err)
	}
	var out []string
	// valueOpen: the last argument is a flag still taking words.
	valueOpen := false
	for _, w := range words {
		switch {
		case strings.HasPrefix(w, "-"):
			out = append(out, w)
			// --flag=v takes more words into v; a bare --flag's value is
			// the next argument.
			valueOpen = strings.Contains(w, "=")
		case len(out) > 0 && !valueOpen && strings.HasPrefix(out[len(out)-1], "-") && !strings.Contains(out[len(out)-1], "="):
			out = append(out, w)
			valueOpen = true
		case len(out) > 0 && valueOpen:
			out[len(out)-1] += " " + w
		default:
			return nil, fmt.Errorf("Ginkgo flags such as --label-filter=... or --focus ...; %q is not a flag or a flag's value", w)
		}
	}
	return out, nil
}
