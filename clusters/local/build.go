package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
)

// Programs the cluster builds from the checkout into <state>/bin.
var programs = []struct{ name, pkg string }{
	{"proxier", "./proxier/cmd/proxier"},
	{"local-node", "./clusters/local/cmd/local-node"},
	{"netserver", "./clusters/local/cmd/netserver"},
	// localcluster itself: the forwarder and the in-pod probe client.
	{"localcluster", "./clusters/local/cmd/localcluster"},
	// The suites' probe (clusters.Probe), run on nodes, in pods and
	// outside the nodes by that name.
	{"netprobe", "./suites/framework/cmd/netprobe"},
}

// buildPrograms compiles the cluster's programs from src (default: the
// checkout above the working directory) into binDir, statically
// (CGO_ENABLED=0: they run in any namespace and the netserver can ship as
// an image), within timeout. With a warm build cache (make deps warms it)
// this is only the link steps; on a cold one it takes minutes, so it says
// every 30 s that it is still at work.
func buildPrograms(ctx context.Context, src, binDir string, timeout time.Duration) error {
	if src == "" {
		var err error
		if src, err = clusters.SourceDir(); err != nil {
			return fmt.Errorf("%w; set Spec.SourceDir", err)
		}
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("bin dir %s: %w", binDir, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("building the cluster programs took longer than %s (a cold Go build cache? run make deps first)", timeout))
	defer cancel()
	args := []string{"build", "-o", binDir + "/"}
	for _, p := range programs {
		args = append(args, p.pkg)
	}
	began := time.Now()
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				klog.InfoS("Still building the cluster programs (a cold Go build cache takes minutes)", "took", time.Since(began).Round(time.Second))
			}
		}
	}()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return fmt.Errorf("build cluster programs in %s (go %s): %w\n%s", src, strings.Join(args, " "), err, out)
	}
	klog.InfoS("Built cluster programs", "dir", binDir, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// goCommand is $GO, else go from PATH, else the toolchain that is
// running tests (GOROOT), so root's sanitised PATH still finds it.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if g, err := exec.LookPath("go"); err == nil {
		return g
	}
	if r := os.Getenv("GOROOT"); r != "" {
		return filepath.Join(r, "bin", "go")
	}
	return "go"
}
