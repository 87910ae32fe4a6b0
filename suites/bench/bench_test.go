package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
	reportrun "github.com/proxyproof/proxyproof/reports/run"
)

// TestHarnessMeasuresBothProxiersInTheKernel runs the whole bench at a
// tiny scale against a real control plane: ours and upstream must give
// every figure, and stand-ins that never program the kernel (sleep) or die
// at once (false) must come out as did_not_finish with the reason, not
// hang the bench or pass as fast.
func TestHarnessMeasuresBothProxiersInTheKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the bench creates network namespaces and runs proxiers in them")
	}
	bins, err := controlplane.Binaries("")
	if err != nil {
		t.Fatalf("the pinned control plane and kube-proxy are not built (run hack/controlplane/build.sh): %v", err)
	}
	ours := filepath.Join(t.TempDir(), "proxier")
	build := exec.Command("go", "build", "-o", ours, "./proxier/cmd/proxier")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build our proxier: %v\n%s", err, out)
	}
	dir := t.TempDir()
	spec := Spec{
		Scales: []Scale{{Services: 50, Endpoints: 2}},
		Cases:  []Case{{Mode: "iptables", Backend: "legacy"}, {Mode: "nftables"}, {Mode: "ipvs"}},
		Proxiers: []Proxier{
			{Name: "ours", Path: ours},
			{Name: "upstream", Path: bins.Proxy},
			{Name: "sleeps", Path: "/bin/sleep", Args: []string{"600"}, NoConfig: true},
			{Name: "dies", Path: "/bin/false", NoConfig: true},
		},
		Dir:              dir,
		Changes:          20,
		Connections:      300,
		FirstSyncTimeout: 10 * time.Second,
		ChangeTimeout:    30 * time.Second,
		MinSyncPeriod:    250 * time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := Run(ctx, spec); err != nil {
		t.Fatalf("bench: %v", err)
	}
	rep, err := reportrun.LoadBench(dir)
	if err != nil || rep == nil {
		t.Fatalf("bench.json: %v (rows %v)", err, rep)
	}
	// The run directory is a report like a suite run's: charts per figure,
	// and a proxier that never finished says so instead of a short bar.
	page, err := os.ReadFile(filepath.Join(dir, reportrun.ReportFile))
	if err != nil {
		t.Fatalf("the bench must leave its report in the run directory: %v", err)
	}
	for _, want := range []string{`id="bench"`, "50x2: first sync (s)", `data-series="sleeps" data-group="nftables"`, "did not finish", "sleeps: first sync not complete after 10s"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if len(rep.Rows) != len(spec.Cases)*len(spec.Proxiers) {
		t.Fatalf("bench.json has %d rows, want %d", len(rep.Rows), len(spec.Cases)*len(spec.Proxiers))
	}
	for _, r := range rep.Rows {
		name := r.Proxier + " " + Case{r.Mode, r.Backend}.String()
		switch {
		case r.Mode == "ipvs":
			if !r.NotMeasured || !strings.HasPrefix(r.Reason, "not measured:") {
				t.Errorf("%s: want a not-measured row with its reason, got %+v", name, r)
			}
		case r.Proxier == "sleeps":
			if !r.DidNotFinish || r.FirstSyncS != 0 || !strings.Contains(r.Reason, "first sync not complete after 10s") {
				t.Errorf("%s: a proxier that never programs the kernel must not finish, got %+v", name, r)
			}
		case r.Proxier == "dies":
			if !r.DidNotFinish || !strings.Contains(r.Reason, "proxier exited") {
				t.Errorf("%s: a proxier that exits must say so, got %+v", name, r)
			}
		default:
			sane(t, name, r, spec)
		}
	}
}

// sane checks a measured row: every figure there and plausible.
func sane(t *testing.T, name string, r Row, spec Spec) {
	t.Helper()
	var bad []string
	check := func(ok bool, what string) {
		if !ok {
			bad = append(bad, what)
		}
	}
	check(!r.DidNotFinish && r.Reason == "", "finished without a reason")
	check(r.FirstSyncS > 0 && r.FirstSyncS < spec.FirstSyncTimeout.Seconds(), "first sync measured")
	check(r.Changes == spec.Changes, "every change seen in the kernel")
	check(r.ChangeP50Ms > 0 && r.ChangeP99Ms >= r.ChangeP50Ms, "change p50 <= p99")
	check(r.ProbeMs > 0, "probe time measured")
	check(r.WriteP50Ms > 0 && r.WriteP99Ms >= r.WriteP50Ms, "API write p50 <= p99")
	// After the write returns, the change still has to reach the kernel;
	// with the write it makes the whole change.
	check(r.AfterWriteP50Ms > 0 && r.AfterWriteP99Ms >= r.AfterWriteP50Ms && r.AfterWriteP99Ms <= r.ChangeP99Ms, "after-write p50 <= p99 <= change p99")
	check(r.BurstS > 0, "burst converged")
	check(r.RSSMB > 5 && r.CPUS > 0, "RSS and CPU read")
	// Endpoints are rules (a jump or DNAT each) or, in our nftables mode,
	// elements of an endpoints map.
	check(r.Rules+r.Elements >= r.Services*(1+r.Endpoints), "rules and elements counted (at least one per Service and endpoint)")
	check(r.Connections == spec.Connections && r.ConnectErrors == 0, "every connection through a ClusterIP succeeded")
	check(r.ConnectP50Us > 0 && r.ConnectP99Us >= r.ConnectP50Us, "connect p50 <= p99")
	if len(bad) > 0 {
		t.Errorf("%s: not sane (%s): %+v", name, strings.Join(bad, "; "), r)
	}
}
