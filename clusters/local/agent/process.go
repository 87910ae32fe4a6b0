package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// spawner forks every pod process from one OS thread that lives as long as
// the agent: the parent-death signal (SIGKILL, so a dead agent leaves no
// pod running) fires when the forking thread exits, and Go may retire any
// pooled thread, e.g. one a netns switch left locked.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer close(s.done)
		for r := range s.reqs {
			r.errc <- r.cmd.Start()
		}
		runtime.UnlockOSThread()
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd, errc}
	return <-errc
}

// close stops the thread; call it once no pod process runs.
func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// proc is one run of a container's program.
type proc struct {
	pid      int
	started  time.Time
	done     chan struct{} // closed when the process has been reaped
	exitCode int32         // valid after done
	signal   string        // the signal that ended it, if any
	finished time.Time
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// term asks the program to stop (the container's PID 1 only, as a runtime
// does); kill ends its whole process group.
func (p *proc) term() { _ = syscall.Kill(p.pid, syscall.SIGTERM) }
func (p *proc) kill() {
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
}

// argv is what a container runs: the image's program with the pod's args,
// or, when the pod names a command, that command. A command naming the
// program (by path or base name) keeps the program; any other command is
// looked up on the node's PATH, so `sh -c ...` works in a known image.
func argv(c *corev1.Container, program string, env map[string]string) ([]string, error) {
	args := expandAll(c.Args, env)
	if len(c.Command) == 0 {
		return append([]string{program}, args...), nil
	}
	cmd := expandAll(c.Command, env)
	head := cmd[0]
	if head != program && filepath.Base(head) != filepath.Base(program) {
		p, err := exec.LookPath(head)
		if err != nil {
			return nil, fmt.Errorf("container %s: command %q: %w", c.Name, head, err)
		}
		program = p
	}
	return append(append([]string{program}, cmd[1:]...), args...), nil
}

// startProcess runs argv inside pod namespace ns, output appended to log.
func (a *Agent) startProcess(ns, log, workdir string, argv []string, env []string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		return nil, fmt.Errorf("pod log: %w", err)
	}
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pod log: %w", err)
	}
	fmt.Fprintf(f, "# %s started: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Env = env
	cmd.Dir = workdir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := a.spawn.start(cmd); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &proc{pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.finished = time.Now()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.signal = ws.Signal().String()
			p.exitCode = 128 + int32(ws.Signal())
		} else if err != nil {
			p.exitCode = int32(cmd.ProcessState.ExitCode())
		}
		close(p.done)
	}()
	return p, nil
}

// expand replaces $(VAR) with env's value as the kubelet does; $$ escapes
// a dollar and an unknown reference stays as written.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func expandAll(ss []string, env map[string]string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = expand(s, env)
	}
	return out
}
