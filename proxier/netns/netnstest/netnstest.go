// Package netnstest makes scratch network namespaces for kernel tests: empty
// but for loopback, with no route anywhere, removed when the test ends.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
)

var seq atomic.Int64

// New makes namespace "<prefix>-<pid>-<n>" and returns its name. It skips,
// saying why, when the test is not root or a binary in needs is missing;
// anything else that goes wrong fails the test.
func New(t testing.TB, prefix string, needs ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create a network namespace")
	}
	for _, bin := range needs {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel test: %s is not installed (hack/install-deps.sh installs it)", bin)
		}
	}
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up in %s: %v: %s", name, err, out)
	}
	return name
}
