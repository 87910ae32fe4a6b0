package controlplane

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// leaderExitsEnv makes this test binary the child of
// TestAZombieLeaderWhoseThreadsStillRunIsAlive: it listens, then ends only
// its main thread, the way a Go process's leader turns Z before the rest
// of it has exited.
const leaderExitsEnv = "PROXYPROOF_TEST_LEADER_EXITS"

func init() {
	if os.Getenv(leaderExitsEnv) == "" {
		return
	}
	runtime.LockOSThread() // init runs on the leader; keep it there
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(3)
	}
	go func() {
		os.Stdout.WriteString(l.Addr().String() + "\n")
		for {
			c, err := l.Accept()
			if err == nil {
				c.Close()
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	// exit(2), not exit_group(2): the leader thread alone.
	syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
}

// A process whose leader has exited (state Z) while its other threads run
// on still holds its sockets: Alive says so, so that a restart does not
// bind the proxier's ports before they are free. Once every thread is
// gone, it is not alive.
func TestAZombieLeaderWhoseThreadsStillRunIsAlive(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), leaderExitsEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	buf := make([]byte, 64)
	n, err := out.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	addr := string(buf[:n-1])
	pid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for !zombie(pid) {
		if time.Now().After(deadline) {
			t.Fatal("the child's leader thread never exited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("the child's listener is gone with its leader: %v", err)
	} else {
		c.Close()
	}
	if !Alive(pid) {
		t.Error("a process whose leader is Z but whose threads still hold its listening socket is not alive")
	}
	_ = cmd.Process.Kill()
	for time.Now().Before(deadline) && Alive(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	if Alive(pid) {
		t.Error("a killed process, every thread gone, is still alive")
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] == 'Z'
		}
	}
	return false
}
