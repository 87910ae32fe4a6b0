package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

var testSeq atomic.Int32

// testClusterName is unique per test in this process and across
// concurrent test processes (the pid), and at most 10 characters.
func testClusterName(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("t%d-%d", os.Getpid()%100000, testSeq.Add(1))
}

// rootSnapshot is the host root namespace's links and routes, the state
// the sealed invariant says the cluster never touches.
func rootSnapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"-o", "link", "show"},
		{"-4", "route", "show", "table", "all"},
		{"-6", "route", "show", "table", "all"},
	} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		for _, line := range strings.SplitAfter(string(out), "\n") {
			if !dockerLine.MatchString(line) {
				b.WriteString(line)
			}
		}
	}
	return b.String()
}

// dockerLine is a link or route of the Docker engine's (docker0, its
// br-<id> network bridges, their veth<id> ports): kind clusters that other
// test packages run beside this one come and go there. The local provider
// never names a device so (its pod veths are cali-like, its node links
// live in the cluster's namespaces), so ignoring them hides nothing of ours.
var dockerLine = regexp.MustCompile(`(^\d+: |dev )(docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7})[@: ]`)

// inNS runs a command in namespace ns and returns its output.
func inNS(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

func leftovers(t *testing.T, name string) []string {
	t.Helper()
	var left []string
	ns, err := clusterNamespaces(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		left = append(left, "namespace "+n)
	}
	if _, err := os.Stat(StateDir(name)); err == nil {
		left = append(left, "state dir "+StateDir(name))
	}
	return left
}

func cleanupCluster(t *testing.T, name string) {
	t.Cleanup(func() {
		if err := destroy(context.Background(), name, paths{StateDir(name)}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}
