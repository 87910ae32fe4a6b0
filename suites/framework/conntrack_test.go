package framework

import (
	"strings"
	"testing"
)

func TestConntrackUsageSumsTheKernelsPerCPUCounters(t *testing.T) {
	text := `1021
1024
entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
000003fd  00000000 00000000 00000000 00000002 00000000 00000000 00000000 00000000 00000003 0000000a 00000001 00000000  00000000 00000000 00000000 00000000
000003fd  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000106 00000000 00000000  00000000 00000000 00000000 00000000
`
	u, err := parseConntrack(text)
	if err != nil {
		t.Fatal(err)
	}
	want := ConntrackUsage{Entries: 1021, Limit: 1024, InsertFailed: 4, Drop: 0x10 + 0x100, EarlyDrop: 1}
	if u != want {
		t.Fatalf("parsed %+v, want %+v", u, want)
	}
	if _, err := parseConntrack("12\n"); err == nil {
		t.Error("a reading without max and statistics was accepted")
	}
}

func TestLoweringTheHostsConntrackLimitNeedsAnExplicitYes(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "true": true} {
		got, err := LowerHostLimitFromEnv(func(string) (string, bool) { return v, v != "" })
		if err != nil || got != want {
			t.Errorf("%s=%q: %v, %v; want %v", EnvConntrackLowerHostLimit, v, got, err, want)
		}
	}
	_, err := LowerHostLimitFromEnv(func(string) (string, bool) { return "yes", true })
	if err == nil || !strings.Contains(err.Error(), `CONNTRACK_LOWER_HOST_LIMIT="yes": want 1 or true`) {
		t.Errorf("a vague yes: %v, want it refused naming the parameter", err)
	}
}
