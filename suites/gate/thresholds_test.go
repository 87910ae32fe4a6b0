package gate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestThresholdsFileErrorsNameTheFileAndLine(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"a figure that does not exist", "figures:\n  change p50: {growth: 0.5}\n  chnage p99: {growth: 1}\n", "thresholds.yaml:3: figure \"chnage p99\" does not exist; the bench's figures are: first sync, change p50"},
		{"a growth that is no number", "figures:\n  change p50:\n    growth: lots\n", "thresholds.yaml:3: figure \"change p50\" growth: \"lots\": want a number"},
		{"a negative growth", "figures:\n  rules:\n    growth: -0.1\n", "thresholds.yaml:3: figure \"rules\" growth: \"-0.1\""},
		{"a figure without growth", "figures:\n  rules:\n    cases: {nftables: 1}\n", "thresholds.yaml:2: figure \"rules\" has no growth"},
		{"an unknown key", "figures:\n  rules:\n    growht: 1\n", "thresholds.yaml:3: figure \"rules\": unknown key \"growht\""},
		{"an unknown case", "figures:\n  rules:\n    growth: 1\n    cases:\n      ebpf: 2\n", "thresholds.yaml:5: figure \"rules\": case \"ebpf\" does not exist"},
		{"a figure twice", "figures:\n  rules: {growth: 1}\n  rules: {growth: 2}\n", "thresholds.yaml:3: figure \"rules\" listed twice"},
		{"YAML that does not parse", "figures:\n\trules: {growth: 1}\n", "thresholds.yaml:2: YAML: found character that cannot start any token"},
		{"an empty file", "", "thresholds.yaml:1: the file is empty"},
		{"no figures", "figures: {}\n", "thresholds.yaml:1: no figures"},
		{"a top-level typo", "figure:\n  rules: {growth: 1}\n", "thresholds.yaml:1: unknown key \"figure\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "thresholds.yaml")
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadThresholds(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestThresholdsCasesOverrideTheFiguresGrowth(t *testing.T) {
	th, err := ParseThresholds([]byte("figures:\n  change p50:\n    growth: 0.5\n    cases:\n      ipvs (VM): 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := th.Find("change p50")
	if !ok || c.For("nftables") != 0.5 || c.For("ipvs (VM)") != 2 {
		t.Errorf("threshold %+v, want 0.5 and 2 for ipvs (VM)", c)
	}
	if _, ok := th.Find("rules"); ok {
		t.Error("rules is not listed, so it is not gated")
	}
}

// The committed thresholds file is the one make gate reads: it must parse.
func TestTheCommittedThresholdsFileParses(t *testing.T) {
	if _, err := LoadThresholds(filepath.Join("..", "..", "gate", "thresholds.yaml")); err != nil {
		t.Fatal(err)
	}
}
