package framework

import (
	"strings"
	"testing"
	"time"
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

func TestOnlyEntriesOutlivingTheWindowCountAsLasting(t *testing.T) {
	// conntrack -L as conntrack-tools 1.4.7 prints it, with its summary
	// (stderr) merged: a TIME_WAIT left by an earlier spec (expires in
	// 37 s), an established connection (days), a UDP flow (expires in
	// 29 s) and an assured UDP stream (118 s).
	text := `tcp      6 37 TIME_WAIT src=10.244.1.5 dst=10.96.0.10 sport=41234 dport=80 src=10.244.2.7 dst=10.244.1.5 sport=8080 dport=41234 [ASSURED] mark=0 use=1
tcp      6 431998 ESTABLISHED src=198.18.0.11 dst=198.18.0.1 sport=50512 dport=6443 src=198.18.0.1 dst=198.18.0.11 sport=6443 dport=50512 [ASSURED] mark=0 use=1
udp      17 29 src=10.244.1.5 dst=10.96.0.10 sport=5353 dport=53 [UNREPLIED] src=10.244.2.7 dst=10.244.1.5 sport=53 dport=5353 mark=0 use=1
udp      17 118 src=10.244.1.5 dst=10.96.0.11 sport=6000 dport=81 src=10.244.2.8 dst=10.244.1.5 sport=81 dport=6000 [ASSURED] mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
`
	for _, c := range []struct {
		window time.Duration
		want   uint64
	}{{0, 4}, {30 * time.Second, 3}, {40 * time.Second, 2}, {2 * time.Minute, 1}} {
		if got := countLasting(text, c.window); got != c.want {
			t.Errorf("entries outliving %s: %d, want %d", c.window, got, c.want)
		}
	}
}

func TestClosedEntriesClearedAreCountedFromConntracksSummary(t *testing.T) {
	for _, c := range []struct {
		text string
		n    uint64
		ok   bool
	}{
		{"tcp      6 37 TIME_WAIT src=10.244.1.5 dst=10.96.0.10 sport=41234 dport=80 ...\nconntrack v1.4.7 (conntrack-tools): 893 flow entries have been deleted.\n", 893, true},
		// conntrack exits 1 here, and it is no failure.
		{"conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n", 0, true},
		{"conntrack v1.4.7 (conntrack-tools): Operation not permitted\n", 0, false},
		{"", 0, false},
	} {
		n, ok := deletedCount(c.text)
		if n != c.n || ok != c.ok {
			t.Errorf("%q: %d, %v; want %d, %v", c.text, n, ok, c.n, c.ok)
		}
	}
}
