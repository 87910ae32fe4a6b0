package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
	reportrun "github.com/proxyproof/proxyproof/reports/run"
)

// TestBenchFinishesEveryRowFromTheDefaultRelativeRunDirectory runs the
// bench as `make bench` does, with no --out: the run directory is the
// relative _output/bench/<time>. Issue 20: the iptables/nft row put the
// backend's iptables links on the proxier's PATH through that relative
// path, Go refused to run them, and the row did not finish.
func TestBenchFinishesEveryRowFromTheDefaultRelativeRunDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the bench creates network namespaces and runs proxiers in them")
	}
	if _, err := controlplane.Binaries(""); err != nil {
		t.Skipf("the pinned control plane is not built (run hack/controlplane/build.sh): %v", err)
	}
	ours := filepath.Join(t.TempDir(), "proxier")
	build := exec.Command("go", "build", "-o", ours, "./proxier/cmd/proxier")
	build.Dir = "../../../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build our proxier: %v\n%s", err, out)
	}
	work := t.TempDir()
	t.Chdir(work)
	var out bytes.Buffer
	err := run([]string{
		"--scale", "20x2", "--modes", "iptables/nft,nftables", "--proxiers", "ours", "--ours", ours,
		"--changes", "5", "--connections", "50", "--timeout", "90s", "--min-sync-period", "250ms",
	}, &out)
	t.Logf("bench printed:\n%s", out.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	dirs, _ := filepath.Glob(filepath.Join("_output", "bench", "*", reportrun.BenchFile))
	if len(dirs) != 1 {
		t.Fatalf("want one run under the relative _output/bench/, found %v", dirs)
	}
	dir := filepath.Dir(dirs[0])
	if abs := filepath.Join(work, dir); !strings.Contains(out.String(), "results: "+filepath.Join(abs, reportrun.BenchFile)) {
		t.Errorf("the bench must name its results by the absolute path %s", abs)
	}
	rep, err := reportrun.LoadBench(dir)
	if err != nil || rep == nil {
		t.Fatalf("bench.json: %v", err)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("want the iptables/nft and nftables rows, got %d", len(rep.Rows))
	}
	for _, r := range rep.Rows {
		if r.DidNotFinish || r.Reason != "" || r.FirstSyncS <= 0 || r.Changes != 5 || r.BurstS <= 0 || r.ConnectErrors != 0 {
			t.Errorf("%s %s: every row must finish with its figures, got %+v", r.Proxier, r.Case(), r)
		}
	}
}
