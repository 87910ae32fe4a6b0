package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"

	"k8s.io/klog/v2"
)

// ipCommand is iproute2, which `ip netns exec` starts before it execs the
// real program: a pid file's process may briefly still be ip.
var ipCommand, _ = exec.LookPath("ip")

// nsenterCommand enters only the network namespace: what the node agent
// needs, because `ip netns exec` also gives its child a mount namespace
// of its own, where the agent's `ip netns add` for pods would mount
// /run/netns/<pod> invisibly to the host (ExecInPod, Destroy).
var nsenterCommand, _ = exec.LookPath("nsenter")

// daemon is a process the cluster started, recorded in pids/<role>.pid as
// "PID BINARY" (the controlplane's format) so another process can stop it.
type daemon struct {
	role string
	pid  int
	log  string
	done chan struct{} // closed when reaped; nil when detached
}

// startDaemon runs bin with args inside network namespace ns ("" = the
// host's), output appended to logPath. With outlive the process gets its
// own session and survives the caller; otherwise it dies with it.
func startDaemon(pidDir, role, ns, logPath, bin string, args []string, outlive bool) (*daemon, error) {
	return startDaemonWith(pidDir, role, ns, false, logPath, bin, args, outlive)
}

// startDaemonWith is startDaemon; hostMounts keeps the host's mount
// namespace (nsenter --net) instead of `ip netns exec`'s private one.
func startDaemonWith(pidDir, role, ns string, hostMounts bool, logPath, bin string, args []string, outlive bool) (*daemon, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("%s: log dir: %w", role, err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", role, err)
	}
	defer logFile.Close()
	name, argv := bin, args
	switch {
	case ns != "" && hostMounts:
		name, argv = "nsenter", append([]string{"--net=/run/netns/" + ns, "--", bin}, args...)
	case ns != "":
		name, argv = "ip", append([]string{"netns", "exec", ns, bin}, args...)
	}
	cmd := exec.Command(name, argv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own: no terminal signal reaches it, and Destroy,
	// not a Ctrl-C to `localcluster up`, decides when it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if !outlive {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	fmt.Fprintf(logFile, "# %s %s\n", name, strings.Join(argv, " "))
	onSpawnerThread(func() { err = cmd.Start() })
	if err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", role, bin, err)
	}
	d := &daemon{role: role, pid: cmd.Process.Pid, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap, or it stays a zombie until we exit
		close(d.done)
	}()
	// The pid file names the binary as /proc/PID/exe will (links resolved).
	exe, err := filepath.EvalSymlinks(bin)
	if err == nil && ns == "" {
		exe, err = filepath.Abs(exe)
	}
	if err == nil {
		err = os.MkdirAll(pidDir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(pidDir, role+".pid"), []byte(fmt.Sprintf("%d %s\n", d.pid, exe)), 0o644)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s: pid file: %w", role, err)
	}
	klog.V(2).InfoS("Started cluster process", "role", role, "pid", d.pid, "netns", ns, "log", logPath)
	return d, nil
}

// exited reports whether a process this one started has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// failure is the error for a daemon that did not come up: the reason,
// then the tail of its log, where the cause is.
func (d *daemon) failure(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if d.exited() {
		msg += " (it exited)"
	}
	return fmt.Errorf("%s: %s; last lines of %s:\n%s", d.role, msg, d.log, controlplane.Tail(d.log, 20))
}

// stopPidFiles stops the processes of the pid files matching glob, all
// at once: SIGTERM, up to grace, then SIGKILL; it returns when they are
// gone. Pid files naming a process that is no longer the recorded
// program (exited, number reused) are just removed.
func stopPidFiles(glob string, grace time.Duration) error {
	files, err := filepath.Glob(glob)
	if err != nil {
		return err
	}
	var errs []error
	var pids []int
	for _, f := range files {
		pid, ok, err := livePid(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			pids = append(pids, pid)
		}
	}
	killAll(pids, grace)
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// livePid reads a pid file and reports whether its process still runs
// the recorded binary (or is still `ip netns exec` about to exec it).
func livePid(file string) (int, bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, false, fmt.Errorf("pid file %s: want \"PID BINARY\", got %q", file, b)
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, false, fmt.Errorf("pid file %s: %w", file, err)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || !controlplane.Alive(pid) {
		return pid, false, nil
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	launcher := (ipCommand != "" && sameFile(exe, ipCommand)) || (nsenterCommand != "" && sameFile(exe, nsenterCommand))
	return pid, exe == fields[1] || launcher, nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// killAll sends SIGTERM to pids, waits up to grace for them to exit,
// then SIGKILLs the rest and waits until they are gone.
func killAll(pids []int, grace time.Duration) {
	if len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for anyAlive(pids) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range pids {
		if controlplane.Alive(pid) {
			klog.InfoS("Cluster process ignored SIGTERM, killing it", "pid", pid, "grace", grace)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for anyAlive(pids) {
		time.Sleep(20 * time.Millisecond)
	}
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if controlplane.Alive(p) {
			return true
		}
	}
	return false
}
