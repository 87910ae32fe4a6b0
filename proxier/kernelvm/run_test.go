package kernelvm

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// failOnPurpose makes TestFailsOnPurposeInsideTheVM fail, so the host side
// can check RunTestInVM reports an inner failure.
var failOnPurpose = flag.Bool("kernelvm.fail-on-purpose", false, "make TestFailsOnPurposeInsideTheVM fail (set only by the test that checks failure reporting)")

// requireVM skips when not root and builds the image when it is missing.
func requireVM(t *testing.T) {
	t.Helper()
	if InVM() {
		t.Skip("kernel VM: this test drives VMs from the host")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel VM: needs root (qemu shares the host's / and the image is built in /var/cache)")
	}
	if err := ensureImageOnce(); err != nil {
		t.Fatalf("kernel VM image: %v", err)
	}
}

func runVM(t *testing.T, opts Options) Result {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("Run(%s %q): %v\noutput:\n%s", opts.Binary, opts.Args, err, res.Output)
	}
	t.Logf("boot %s, total %s, exit code %d", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond), res.ExitCode)
	return res
}

func TestRunReturnsTheOutputAndExitCodeOfACommandOnTheVMKernel(t *testing.T) {
	requireVM(t)
	res := runVM(t, Options{
		Binary: "/bin/sh",
		Args:   []string{"-c", `cat /proc/net/ip_vs; echo "err:$FOO" >&2; printf '%s|' "$@"; pwd; hostname; exit 3`, "sh", "a b", "it's"},
		Env:    []string{"FOO=x y"},
		Dir:    "/usr",
	})
	if res.ExitCode != 3 {
		t.Errorf("exit code = %d, want 3", res.ExitCode)
	}
	out := string(res.Output)
	for _, want := range []string{"IP Virtual Server version", "err:x y", "a b|it's|", "/usr\n", "kernelvm\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if res.Boot <= 0 || res.Boot > res.Total {
		t.Errorf("boot %s, total %s: want 0 < boot <= total", res.Boot, res.Total)
	}
}

func TestASharedDirectoryIsWritableFromTheGuestAtItsGuestPath(t *testing.T) {
	requireVM(t)
	host := t.TempDir()
	if err := os.WriteFile(host+"/from-host", []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	res := runVM(t, Options{
		Binary:  "/bin/sh",
		Args:    []string{"-c", "cat /run/shared/from-host > /run/shared/from-guest && echo ' back' >> /run/shared/from-guest"},
		Shares:  []Share{{HostPath: host, GuestPath: "/run/shared"}},
		WorkDir: work,
	})
	if res.ExitCode != 0 {
		t.Fatalf("exit code %d: %s", res.ExitCode, res.Output)
	}
	got, err := os.ReadFile(host + "/from-guest")
	if err != nil || string(got) != "hello back\n" {
		t.Errorf("host sees from-guest = %q (%v), want %q", got, err, "hello back\n")
	}
	if left, _ := os.ReadDir(work); len(left) != 0 {
		t.Errorf("the run directory was left in WorkDir: %v", left)
	}
}

// TestModprobeFindsTheGuestKernelsModules: the host's tools run in the
// guest (chrooted into the host), and kube-proxy's --cleanup begins with
// "modprobe -va ip_vs"; when that failed (no modules of the guest's
// kernel under the host's /lib/modules) it skipped its whole IPVS
// clean-up, and a hand switch out of ipvs left the virtual servers.
func TestModprobeFindsTheGuestKernelsModules(t *testing.T) {
	requireVM(t)
	res := runVM(t, Options{Binary: "/bin/sh", Args: []string{"-c", `modprobe -va ip_vs && ls /lib/modules/$(uname -r)/modules.dep`}})
	if res.ExitCode != 0 {
		t.Fatalf("modprobe -va ip_vs in the guest: exit code %d:\n%s", res.ExitCode, res.Output)
	}
}

func TestIPVSAdmCreatesAServiceWithEverySchedulerInTheVM(t *testing.T) {
	requireVM(t)
	schedulers := []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh"}
	var script strings.Builder
	script.WriteString("set -e\n")
	for i, s := range schedulers {
		fmt.Fprintf(&script, "ipvsadm -A -t 10.96.0.%d:80 -s %s\n", i+1, s)
	}
	script.WriteString("ipvsadm -a -t 10.96.0.1:80 -r 10.244.0.5:8080 -m\nipvsadm -Ln\n")
	res := runVM(t, Options{Binary: "/bin/sh", Args: []string{"-c", script.String()}})
	if res.ExitCode != 0 {
		t.Fatalf("ipvsadm exit code %d:\n%s", res.ExitCode, res.Output)
	}
	out := string(res.Output)
	for i, s := range schedulers {
		if want := fmt.Sprintf("TCP  10.96.0.%d:80 %s", i+1, s); !strings.Contains(out, want) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "-> 10.244.0.5:8080") {
		t.Errorf("ipvsadm -Ln lacks the real server 10.244.0.5:8080:\n%s", out)
	}
}

func TestInsideVMRunsThisTestOnTheVMKernel(t *testing.T) {
	if !InsideVM(t) {
		return
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Fatalf("no ip_vs in the VM kernel: %v", err)
	}
	if h, _ := os.Hostname(); h != "kernelvm" {
		t.Errorf("hostname = %q, want kernelvm", h)
	}
	// Writes to /tmp must work (tests make temp dirs) and stay in the VM.
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatalf("temp file in the VM: %v", err)
	}
	f.Close()
}

// TestFailsOnPurposeInsideTheVM does nothing unless -kernelvm.fail-on-purpose
// is set: the failure-reporting test sets it for the inner run.
func TestFailsOnPurposeInsideTheVM(t *testing.T) {
	if *failOnPurpose && InVM() {
		t.Fatal("failing on purpose inside the VM")
	}
}

// recordingTB stands in for testing.TB so a test can see what RunTestInVM
// reports without failing itself.
type recordingTB struct {
	testing.TB
	mu      sync.Mutex
	errs    []string
	skipped bool
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Skip(args ...any) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	runtime.Goexit()
}

// capture runs fn on its own goroutine, as Fatalf and Skip end it.
func (r *recordingTB) capture(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

func TestRunTestInVMReportsWhatTheInnerRunDid(t *testing.T) {
	requireVM(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = no error reported
	}{
		{name: "a passing inner test reports nothing", args: []string{"-test.run", "^TestFailsOnPurposeInsideTheVM$"}},
		{name: "a failing inner test fails the outer one", args: []string{"-test.run", "^TestFailsOnPurposeInsideTheVM$", "-kernelvm.fail-on-purpose"}, wantErr: "inner test run failed"},
		{name: "a pattern matching no test fails the outer one", args: []string{"-test.run", "^NoSuchTest$"}, wantErr: "matched no test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			rec.capture(func() { RunTestInVM(rec, "", tc.args...) })
			if rec.skipped {
				t.Fatal("RunTestInVM skipped")
			}
			joined := strings.Join(rec.errs, "\n")
			if tc.wantErr == "" && joined != "" {
				t.Errorf("RunTestInVM reported errors: %s", joined)
			}
			if tc.wantErr != "" && !strings.Contains(joined, tc.wantErr) {
				t.Errorf("RunTestInVM reported %q, want one containing %q", joined, tc.wantErr)
			}
		})
	}
}

func TestRunStopsTheVMAtTheTimeoutAndSaysSo(t *testing.T) {
	requireVM(t)
	start := time.Now()
	_, err := Run(context.Background(), Options{Binary: "/bin/sleep", Args: []string{"600"}, Timeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "timed out after 10s") {
		t.Fatalf("Run() error = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("Run() returned after %s, want soon after the 10s timeout", took)
	}
}

func TestTapConnectsTheVMToANamespaceOnTheHost(t *testing.T) {
	requireVM(t)
	ns := fmt.Sprintf("kernelvm%d", os.Getpid())
	const tap, hostAddr, guestAddr = "kvtap0", "169.254.60.1", "169.254.60.2/30"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "tuntap", "add", "dev", tap, "mode", "tap"},
		{"ip", "addr", "add", hostAddr + "/30", "dev", tap},
		{"ip", "link", "set", tap, "up"},
	} {
		if out, err := netns.Cmd(ns, args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("namespace %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
		}
	}
	var ln net.Listener
	if err := netns.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp", hostAddr+":0")
		return err
	}); err != nil {
		t.Fatalf("listen in namespace %s: %v", ns, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()

	res := runVM(t, Options{
		Binary:       "/bin/bash",
		Args:         []string{"-c", fmt.Sprintf("echo hello-from-vm >/dev/tcp/%s/%d", hostAddr, port)},
		TapNetNS:     ns,
		TapName:      tap,
		GuestAddress: guestAddr,
		GuestGateway: hostAddr,
	})
	if res.ExitCode != 0 {
		t.Fatalf("guest connect exit code %d:\n%s", res.ExitCode, res.Output)
	}
	select {
	case msg := <-got:
		if strings.TrimSpace(msg) != "hello-from-vm" {
			t.Errorf("host side got %q, want hello-from-vm", msg)
		}
	case <-time.After(10 * time.Second):
		t.Error("host side got no connection from the VM")
	}
}
