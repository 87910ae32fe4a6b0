package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters/proxierlog"
	reportrun "github.com/proxyproof/proxyproof/reports/run"
)

// probeErr is what the bench's iptables read said in issue 20 while the
// proxier could not run iptables at all: true, and the wrong lead.
const probeErr = "chain 'KUBE-SERVICES' in table 'nat' is incompatible, use 'nft' tool"

// execErr is what the proxier said, once a second.
const execErr = `err="exec: \"iptables\": cannot run executable found relative to current directory"`

// failingLog is a proxier log like issue 20's: an early different error,
// then the same sync failure every second among info lines.
func failingLog(t *testing.T, repeats int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`I1206 08:00:00.000001    4242 app.go:88] "Starting proxier" mode="iptables"` + "\n")
	b.WriteString(`E1206 08:00:00.500000    4242 metrics.go:268] "Cannot register metric" mode="iptables"` + "\n")
	for i := range repeats {
		fmt.Fprintf(&b, "I1206 08:%02d:%02d.000001    4242 daemon.go:200] \"Syncing\" full=true\n", i/60, i%60)
		fmt.Fprintf(&b, "E1206 08:%02d:%02d.000002    4242 daemon.go:227] \"Sync failed; the next sync will be full\" %s\n", i/60, i%60, execErr)
	}
	path := filepath.Join(t.TempDir(), "proxier.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// stuckKernel never shows a Service and says why as the probe did.
type stuckKernel struct{}

func (stuckKernel) services(context.Context) (map[string]string, error) {
	return nil, fmt.Errorf("iptables -t nat -S KUBE-SERVICES in node: exit status 1: %s", probeErr)
}
func (stuckKernel) endpoints(context.Context, string) (map[string]bool, error) { return nil, nil }
func (stuckKernel) token(*service, string) string                              { return "" }
func (stuckKernel) counts(context.Context) (int, int, error)                   { return 0, 0, nil }
func (stuckKernel) close()                                                     {}

// fakeProcess is a proxier that is running or has exited with exit.
type fakeProcess struct{ exit string }

func (p fakeProcess) exited() bool                   { return p.exit != "" }
func (p fakeProcess) exitReason() string             { return "proxier exited (" + p.exit + ")" }
func (fakeProcess) usage() (float64, float64, error) { return 0, 0, nil }
func (fakeProcess) stop()                            {}

// TestAFailedRowShowsTheProxiersLastErrors: a row whose proxier never
// programs the kernel (still running, or exited) must carry the proxier's
// own last errors, folded and counted, in its reason, and that reason must
// reach bench.json, the printed list under the table and report.html.
func TestAFailedRowShowsTheProxiersLastErrors(t *testing.T) {
	for _, proc := range []fakeProcess{{}, {exit: "exit status 1"}} {
		log := failingLog(t, 300)
		row := Row{Mode: "iptables", Backend: "nft", Proxier: "ours", Services: 20, Endpoints: 2}
		r := &rowRun{
			spec: Spec{FirstSyncTimeout: 50 * time.Millisecond}, c: Case{Mode: "iptables", Backend: "nft"},
			p: Proxier{Name: "ours"}, sc: Scale{Services: 20, Endpoints: 2},
			objs: &objects{services: []*service{{name: "svc-0", clusterIP: "10.96.0.10"}}},
			log:  log, row: &row,
		}
		chains, err := r.firstSync(context.Background(), stuckKernel{}, proc, time.Now())
		if chains != nil || err != nil || !row.DidNotFinish {
			t.Fatalf("exit %q: a proxier that never programs the kernel must leave the row unfinished, got chains %v err %v row %+v", proc.exit, chains, err, row)
		}
		wantFirst := "first sync not complete after 50ms"
		if proc.exit != "" {
			wantFirst = "proxier exited (exit status 1)"
		}
		for _, want := range []string{
			wantFirst,
			"proxier's last errors (" + log + "):",
			`metrics.go:268] "Cannot register metric"`,
			`daemon.go:227] "Sync failed; the next sync will be full" ` + execErr + " (logged 300 times)",
		} {
			if !strings.Contains(row.Reason, want) {
				t.Errorf("exit %q: reason lacks %q:\n%s", proc.exit, want, row.Reason)
			}
		}
		if strings.Count(row.Reason, "cannot run executable") != 1 || strings.Contains(row.Reason, "Syncing") {
			t.Errorf("exit %q: the repeated error must be folded into one line and info lines left out:\n%s", proc.exit, row.Reason)
		}
		if i, j := strings.Index(row.Reason, wantFirst), strings.Index(row.Reason, "cannot run executable"); i > j {
			t.Errorf("exit %q: the bench's account comes first, then the proxier's:\n%s", proc.exit, row.Reason)
		}
		if proc.exit == "" && !strings.Contains(row.Reason, "(the bench's last kernel read: iptables -t nat -S KUBE-SERVICES in node: exit status 1: "+probeErr+")") {
			t.Errorf("reason lacks the bench's own last read, labelled:\n%s", row.Reason)
		}
		reasonReachesEveryOutput(t, row)
	}
}

// reasonReachesEveryOutput writes a run of row and looks for the
// proxier's error in bench.json, the printed list and report.html.
func reasonReachesEveryOutput(t *testing.T, row Row) {
	t.Helper()
	dir := t.TempDir()
	if err := writeRun(dir, &Report{Note: NoteShared, Rows: []Row{row}}, "bench --scale 20x2"); err != nil {
		t.Fatal(err)
	}
	rep, err := reportrun.LoadBench(dir)
	if err != nil || rep == nil || len(rep.Rows) != 1 || rep.Rows[0].Reason != row.Reason {
		t.Fatalf("bench.json must keep the reason as it is: %v %+v", err, rep)
	}
	var printed bytes.Buffer
	if err := WriteReasons(&printed, rep.Rows); err != nil {
		t.Fatal(err)
	}
	want := "ours iptables/nft 20x2 did not finish: "
	if !strings.Contains(printed.String(), want) || !strings.Contains(printed.String(), "\n      E daemon.go:227] ") {
		t.Errorf("the printed list must name the row and indent the proxier's errors under it:\n%s", printed.String())
	}
	page, err := os.ReadFile(filepath.Join(dir, reportrun.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ours iptables/nft 20x2 did not finish: ",
		"cannot run executable found relative to current directory",
		"(logged 300 times)",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// TestProxierErrorsFallsBackToTheLastLines: a proxier that logs no error
// (a crash to stderr, a stand-in) still gets its last lines shown, and a
// Go panic counts as an error.
func TestProxierErrorsFallsBackToTheLastLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxier.log")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("one\ntwo\nthree\nfour\n")
	if got := proxierSays(path); !strings.Contains(got, "last log lines (no error logged)") || !strings.HasSuffix(got, "\n  two\n  three\n  four") {
		t.Errorf("a log without errors must show its last three lines, got %q", got)
	}
	write("I1206 08:00:00.000001    1 a.go:1] \"ok\"\npanic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n")
	if got := proxierSays(path); !strings.Contains(got, "last errors") || !strings.HasSuffix(got, "\n  panic: runtime error: index out of range") {
		t.Errorf("a panic must be the error shown, got %q", got)
	}
	write("")
	if got := proxierSays(path); !strings.Contains(got, "empty") {
		t.Errorf("an empty log must be said so, got %q", got)
	}
	write("E1206 08:00:00.000001    1 a.go:1] " + strings.Repeat("x", 2*proxierlog.LineMax) + "\n")
	if got := proxierSays(path); len(got) > proxierlog.LineMax+len(path)+80 || !strings.Contains(got, "[...]") {
		t.Errorf("a huge line must be cut, got %d bytes", len(got))
	}
}
