package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// process is one running component, its output going to a log file.
type process struct {
	name    string
	bin     string
	log     string
	pidFile string
	health  string // the URL Start waits on
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // valid after done
}

// startProcess runs bin with args, output to dir/logs/name.log and its pid
// in dir/pids/name.pid (for StopDir from another process). Unless
// outlive, the child is killed when the caller's process dies, so an
// aborted test run leaves no control plane behind.
func startProcess(dir, name, bin string, args []string, outlive bool) (*process, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own process group: a terminal's Ctrl-C reaches the caller, which
	// stops the components in order, not all of them at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !outlive {
		// Linux sends it when the forking thread exits. Go ends a thread
		// only when a goroutine leaves it locked; netns.Do hands its
		// threads back, so do not lock threads and exit elsewhere in a
		// process that starts a control plane without OutliveCaller.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	fmt.Fprintf(logFile, "# %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &process{name: name, bin: bin, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	p.pidFile = filepath.Join(dir, "pids", name+".pid")
	if err := os.WriteFile(p.pidFile, []byte(fmt.Sprintf("%d %s\n", cmd.Process.Pid, bin)), 0o644); err != nil {
		_ = p.stop(time.Second)
		return nil, fmt.Errorf("%s: pid file: %w", name, err)
	}
	klog.InfoS("Started control plane component", "component", name, "pid", cmd.Process.Pid, "log", logPath)
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended (and why).
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs, and always waits
// for the exit so no zombie or open port outlives it. It returns an error
// only if the process had already died on its own: how a component exits
// after SIGTERM varies (kube-scheduler without leader election exits 1).
func (p *process) stop(grace time.Duration) error {
	var crashed error
	if done, err := p.exited(); done {
		crashed = fmt.Errorf("%s exited before Stop: %v", p.name, err)
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			klog.InfoS("Control plane component ignored SIGTERM, killing it", "component", p.name, "pid", p.pid(), "grace", grace)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.pidFile != "" {
		_ = os.Remove(p.pidFile)
	}
	return crashed
}

// failure is the error for a component that did not become healthy: the
// reason, then the tail of its log, which is where the cause is.
func (p *process) failure(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if done, err := p.exited(); done {
		msg += fmt.Sprintf(" (exited: %v)", err)
	}
	return fmt.Errorf("%s: %s; last lines of %s:\n%s", p.name, msg, p.log, Tail(p.log, 25))
}

// Tail returns the last n lines of a file (at most 8 KiB of it), for
// errors that show why a component failed.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	const max = 8 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// StopDir stops the components a control plane in dir left running (one
// started with Spec.OutliveCaller by another process), using its pid
// files. A pid whose executable is no longer the recorded one is left
// alone: the number was reused.
func StopDir(dir string, grace time.Duration) error {
	files, err := filepath.Glob(filepath.Join(dir, "pids", "*.pid"))
	if err != nil {
		return err
	}
	// Controllers first, etcd last, as Stop does.
	order := map[string]int{"kube-scheduler": 0, "kube-controller-manager": 0, "kube-apiserver": 1, "etcd": 2}
	var errs []error
	for stage := 0; stage <= 2; stage++ {
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".pid")
			if order[name] != stage {
				continue
			}
			if err := stopPidFile(f, grace); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func stopPidFile(file string, grace time.Duration) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return fmt.Errorf("pid file %s: want \"PID BINARY\", got %q", file, b)
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return fmt.Errorf("pid file %s: %w", file, err)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != fields[1] {
		return os.Remove(file) // gone, or the pid now belongs to another program
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if Alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for Alive(pid) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return os.Remove(file)
}

// Alive reports whether pid exists and is not a zombie whose threads have
// all exited.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3, after "(comm)", is the state; Z is a zombie awaiting reaping.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) || b[i+2] != 'Z' {
		return true
	}
	// The leader of a multi-threaded process (any Go program) shows Z as
	// soon as it has exited, while its other threads may still be exiting
	// and holding the process's files: its listening sockets too. A
	// restarted kube-proxy was once refused so ("port clash: ...:10256
	// ... address already in use") right after its predecessor "died".
	// Alive until the leader is its last task.
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err == nil && len(tasks) > 1
}
