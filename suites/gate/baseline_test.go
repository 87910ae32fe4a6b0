package gate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBaselineFileErrorsNameTheFileAndLine(t *testing.T) {
	good := `{
  "kind": "proxyproof-gate-baseline",
  "modes": [
    {"name": "iptables", "specs": [
      {"name": "ClusterIP answers", "outcome": "passed"},
      {"name": "NodePort answers", "outcome": "passed"}
    ]}
  ]
}
`
	tests := []struct {
		name, text, want string
	}{
		{"missing", "", "baseline.json: no such file"},
		{"empty", " \n", "baseline.json: the file is empty"},
		{"cut short", good[:120], "baseline.json: not JSON"},
		{"a bad outcome", strings.Replace(good, `"NodePort answers", "outcome": "passed"`, `"NodePort answers", "outcome": "pased"`, 1), `baseline.json:6: mode iptables spec "NodePort answers": outcome "pased"`},
		{"an unknown field", strings.Replace(good, `"modes"`, `"mdoes": [], "modes"`, 1), `baseline.json:3: unknown field "mdoes"`},
		{"a number where a name goes", strings.Replace(good, `"name": "iptables"`, `"name": 7`, 1), `baseline.json:4: modes.name: got JSON number, want string`},
		{"a run.json given by mistake", `{"name": "e2e-x", "modes": []}`, `unknown field "name"`},
		{"another kind", strings.Replace(good, "proxyproof-gate-baseline", "bench", 1), `baseline.json:2: kind "bench", want "proxyproof-gate-baseline"`},
		{"a bench row without scale", strings.Replace(good, "\n  \"modes\"", "\n  \"bench\": {\"rows\": [\n {\"mode\": \"nftables\", \"proxier\": \"ours\"}]},\n  \"modes\"", 1), "baseline.json:4: bench.rows[0] needs mode, proxier, services and endpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "baseline.json")
			if tt.name != "missing" {
				if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadBaseline(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "baseline.json")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadBaseline(path)
	if err != nil || len(r.Modes) != 1 || r.Modes[0].Counts.Passed != 2 {
		t.Fatalf("good baseline: %v %+v", err, r)
	}
}

func TestABaselineRunDirectoryThatDoesNotLoadIsAnError(t *testing.T) {
	_, err := LoadBaseline(filepath.Join("..", "..", "reports", "testdata", "runs", "corrupt"))
	if err == nil || !strings.Contains(err.Error(), "ginkgo.json") {
		t.Fatalf("err = %v, want the corrupt file named", err)
	}
}
