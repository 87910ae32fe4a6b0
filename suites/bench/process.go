package bench

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proxierProcess is a running proxier as a row sees it: in a node
// namespace here (process) or in the kernel VM (vmProcess).
type proxierProcess interface {
	exited() bool
	// exitReason says how it ended (the row adds the log's last errors).
	exitReason() string
	// usage is its peak RSS (MB) and CPU seconds, children included.
	usage() (rssMB, cpuS float64, err error)
	stop()
}

// process is a proxier running in its node namespace. `ip netns exec`
// execs the proxier in place, so the pid is the proxier's own.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(p Proxier, ns, config, pathDir, logFile string) (*process, error) {
	args := append([]string{"netns", "exec", ns, p.Path}, p.Args...)
	if !p.NoConfig {
		args = append(args, "--config", config, "--v=1")
	}
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", args...)
	cmd.Env = withPath(pathDir)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a stop also ends iptables-restore children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("proxier %s: start %s: %w", p.Name, p.Path, err)
	}
	pr := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		f.Close()
		close(pr.done)
	}()
	return pr, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) exitReason() string {
	return fmt.Sprintf("proxier exited (%v)", p.err)
}

// usage is the peak RSS (VmHWM, MB) of the proxier itself and the CPU
// seconds it and its reaped children (iptables-restore, nft) used.
func (p *process) usage() (rssMB, cpuS float64, err error) {
	return procUsage(p.cmd.Process.Pid)
}

// procUsage reads pid's peak RSS and CPU seconds from this kernel's /proc.
func procUsage(pid int) (rssMB, cpuS float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			rssMB = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return rssMB, 0, err
	}
	// Fields after the parenthesised name: utime is field 14 overall.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 15 {
		return rssMB, 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	var ticks float64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return rssMB, ticks / 100, nil // USER_HZ is 100 on Linux
}

// stop ends the proxier: SIGTERM to its group, SIGKILL after 10 s.
func (p *process) stop() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}
