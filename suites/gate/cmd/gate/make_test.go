package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/suites/gate"
)

// worseProxier is our proxier made worse on purpose, as a wrapper any
// kube-proxy-compatible path may be: UDP to Services is dropped before it
// reaches the proxier's rules, the proxier never collects garbage (its
// RSS, the bench's steadiest figure, grows) and it may run only a tenth
// of the time (stopped 1.8 s of every 2), so it programs changes late.
const worseProxier = `#!/bin/sh
nft -f - <<'NFT'
table inet gate-worse {
	chain pre { type filter hook prerouting priority -300; ip daddr 10.96.0.0/16 meta l4proto udp drop; }
	chain out { type filter hook output priority -300; ip daddr 10.96.0.0/16 meta l4proto udp drop; }
}
NFT
export GOGC=off
me=$$
( while kill -0 $me 2>/dev/null; do kill -STOP $me; sleep 1.8; kill -CONT $me; sleep 0.2; done ) >/dev/null 2>&1 &
exec %s "$@"
`

// makeGate runs make in the repository with the small gate parameters
// (one mode, the ClusterIP specs, a 200x5 bench).
func makeGate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append(args, "MODE=iptables", "LABEL=feature:clusterip", "SCALE=200x5", "CHANGES=20")
	cmd := exec.Command("make", args...)
	cmd.Dir = filepath.Join("..", "..", "..", "..")
	began := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("make %s: %s (%v)", strings.Join(args, " "), time.Since(began).Round(time.Second), err)
	return string(out), err
}

// The "done when": make gate passes against a baseline from the
// same build and fails with the gate's status 1, naming the spec and the
// figure, when the proxier is made worse.
func TestMakeGatePassesOnTheSameBuildAndFailsOnAWorseProxier(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the suite's clusters and the bench run in network namespaces")
	}
	if testing.Short() {
		t.Skip("-short: runs the suite and the bench three times (about 10 minutes)")
	}
	dir := t.TempDir()
	base, baseline := filepath.Join(dir, "base"), filepath.Join(dir, "baseline.json")
	if out, err := makeGate(t, "gate-baseline", "RUN_DIR="+base, "BASELINE="+baseline); err != nil {
		t.Fatalf("make gate-baseline: %v\n%s", err, tail(out))
	}
	if _, err := gate.ReadBaselineFile(baseline); err != nil {
		t.Fatalf("make gate-baseline wrote no usable baseline: %v", err)
	}

	same := filepath.Join(dir, "same")
	if out, err := makeGate(t, "gate", "BASELINE="+base, "RUN_DIR="+same); err != nil {
		t.Fatalf("make gate against a baseline from the same build: %v\n%s", err, tail(out))
	}
	if md := readFile(t, filepath.Join(same, gate.SummaryFile)); !strings.Contains(md, "PASS") {
		t.Errorf("summary of a passing gate:\n%s", md)
	}

	proxier, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "_output", "bin", "proxier"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "worse-proxier")
	if err := os.WriteFile(wrapper, []byte(fmt.Sprintf(worseProxier, proxier)), 0o755); err != nil {
		t.Fatal(err)
	}
	worse := filepath.Join(dir, "worse")
	out, err := makeGate(t, "gate", "BASELINE="+base, "RUN_DIR="+worse, "PROXIER="+wrapper)
	if err == nil || !strings.Contains(out, "] Error 1") {
		t.Fatalf("make gate with a worse proxier: %v, want the gate's status 1 (make: Error 1)\n%s", err, tail(out))
	}
	md := readFile(t, filepath.Join(worse, gate.SummaryFile))
	t.Logf("summary of the worse proxier's gate:\n%s", md)
	for _, want := range []string{"FAIL", "| iptables | clusterip |", "over ClusterIP UDP", "| **regressed** | 200x5 | iptables/nft | rss |"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(s string) string {
	if len(s) > 6000 {
		return "..." + s[len(s)-6000:]
	}
	return s
}
