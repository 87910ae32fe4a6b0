package kernelvm

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// InVM reports whether this process runs inside the kernel VM.
func InVM() bool { return os.Getenv(InVMEnv) == "1" }

// imageOnce builds or checks the image once per test process: the check
// costs about a second even when cached.
var (
	imageOnce sync.Once
	imageErr  error
)

func ensureImageOnce() error {
	imageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		imageErr = EnsureImage(ctx)
	})
	return imageErr
}

// deadlineMargin is left between the inner run's timeout and the outer
// test's deadline, so the outer test still reports instead of panicking.
const deadlineMargin = 30 * time.Second

// RunTestInVM runs test binary bin (os.Args[0] when empty) inside the VM
// with args (e.g. "-test.run", "^TestX$") and PROXYPROOF_IN_VM=1, logs its
// output and fails t if it failed or ran no test. It skips when not root
// (qemu shares the host's / and the image lives in /var/cache) and builds
// the image when it is missing.
func RunTestInVM(t testing.TB, bin string, args ...string) {
	t.Helper()
	if InVM() {
		t.Fatalf("kernel VM: RunTestInVM called inside the VM (check kernelvm.InVM first)")
	}
	if os.Geteuid() != 0 {
		t.Skip("kernel VM: needs root (qemu shares the host's / and the image is built in /var/cache)")
	}
	if err := ensureImageOnce(); err != nil {
		t.Fatalf("kernel VM image: %v", err)
	}
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			t.Fatalf("kernel VM: own test binary: %v", err)
		}
		bin = self
	}
	timeout := defaultTimeout
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			timeout = time.Until(dl) - deadlineMargin
			if timeout <= 0 {
				t.Fatalf("kernel VM: less than %s left before the test deadline", deadlineMargin)
			}
		}
	}
	// -test.v first so the inner t.Log lines show; later args may override.
	res, err := Run(context.Background(), Options{
		Binary:  bin,
		Args:    append([]string{"-test.v=true"}, args...),
		Timeout: timeout,
	})
	if len(res.Output) > 0 {
		t.Logf("kernel VM output (%s %s):\n%s", bin, strings.Join(args, " "), prefixLines(res.Output, "vm| "))
	}
	if err != nil {
		t.Fatalf("kernel VM: %v", err)
	}
	t.Logf("kernel VM: boot %s, total %s, exit code %d", res.Boot.Round(time.Millisecond), res.Total.Round(time.Millisecond), res.ExitCode)
	if res.ExitCode != 0 {
		t.Errorf("kernel VM: the inner test run failed (exit code %d); its output is above", res.ExitCode)
	}
	if bytes.Contains(res.Output, []byte("testing: warning: no tests to run")) {
		t.Errorf("kernel VM: the inner run matched no test (args %q)", args)
	}
}

// InsideVM returns true inside the VM: the calling test then does its
// real-kernel work. On the host it re-runs exactly the calling test inside
// the VM through RunTestInVM and returns false: the caller returns.
func InsideVM(t *testing.T) bool {
	t.Helper()
	if InVM() {
		return true
	}
	RunTestInVM(t, "", "-test.run", testRunPattern(t.Name()))
	return false
}

// testRunPattern matches exactly the test (or subtest) named name:
// -test.run splits its pattern on "/" into one regexp per level.
func testRunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// prefixLines marks inner output so its "--- FAIL" and "FAIL" lines are
// never taken for the outer run's own (go test -json, CI log readers).
func prefixLines(out []byte, prefix string) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}
