package netserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServer serves on loopback until the returned stop is called or the
// test ends; exited is closed once Serve has returned, its error in *serveErr.
func startServer(t *testing.T, cfg Config) (s *Server, stop context.CancelFunc, exited <-chan struct{}, serveErr *error) {
	t.Helper()
	cfg.Address = "127.0.0.1"
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	serveErr = new(error)
	go func() {
		*serveErr = s.Serve(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s, cancel, done, serveErr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpointsAnswerWithHostnameClientAndHealth(t *testing.T) {
	s, _, _, _ := startServer(t, Config{Hostname: "web-1", UDPPort: -1})
	base := "http://" + s.HTTPAddr().String()
	for _, tc := range []struct {
		name, path string
		want       func(body string) bool
	}{
		{"hostname answers the configured name", "/hostname", func(b string) bool { return b == "web-1" }},
		{"clientip answers the caller's loopback address and port", "/clientip", func(b string) bool {
			h, p, err := net.SplitHostPort(b)
			return err == nil && h == "127.0.0.1" && p != "0"
		}},
		{"healthz answers ok", "/healthz", func(b string) bool { return b == "ok" }},
		{"readyz answers ok while serving", "/readyz", func(b string) bool { return b == "ok" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, base+tc.path)
			if code != http.StatusOK || !tc.want(body) {
				t.Errorf("GET %s = %d %q", tc.path, code, body)
			}
		})
	}
}

func TestHostnameFallsBackToPodName(t *testing.T) {
	t.Setenv("POD_NAME", "from-env")
	if got := hostname(""); got != "from-env" {
		t.Errorf("hostname with POD_NAME set = %q, want from-env", got)
	}
	t.Setenv("POD_NAME", "")
	want, _ := os.Hostname()
	if got := hostname(""); got != want {
		t.Errorf("hostname without POD_NAME = %q, want the host name %q", got, want)
	}
}

func TestUDPDatagramIsAnsweredWithHostnameAndClientAddress(t *testing.T) {
	s, _, _, _ := startServer(t, Config{Hostname: "udp-1"})
	c, err := net.Dial("udp", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := "udp-1 " + c.LocalAddr().String(); string(buf[:n]) != want {
		t.Errorf("UDP answer = %q, want %q", buf[:n], want)
	}
}

func TestReadyzFailsFromTheStopSignalUntilExit(t *testing.T) {
	const delay = 700 * time.Millisecond
	s, stop, exited, serveErr := startServer(t, Config{Hostname: "x", UDPPort: -1, ShutdownDelay: delay})
	url := "http://" + s.HTTPAddr().String()
	began := time.Now()
	stop()
	// Give Serve a moment to see the signal, well inside the delay.
	time.Sleep(100 * time.Millisecond)
	if code, _ := get(t, url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz after the stop signal = %d, want 503", code)
	}
	if code, body := get(t, url+"/hostname"); code != http.StatusOK || body != "x" {
		t.Errorf("hostname during the shutdown delay = %d %q, want it still served", code, body)
	}
	select {
	case <-exited:
		if *serveErr != nil {
			t.Fatal(*serveErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit after its shutdown delay")
	}
	if took := time.Since(began); took < delay {
		t.Errorf("server exited after %s, before its shutdown delay %s", took, delay)
	}
	if _, err := http.Get(url + "/readyz"); err == nil {
		t.Error("server still answers after exiting")
	}
}

// TestMain lets the test binary act as the netserver command, so the SIGTERM
// path is tested on a real process.
func TestMain(m *testing.M) {
	if os.Getenv("NETSERVER_TEST_MAIN") == "1" {
		if err := Main(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestTheCommandAnswers503AfterSIGTERMAndExitsAfterTheDelay(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(os.Args[0], "--address=127.0.0.1", "--http-port="+itoa(port), "--udp-port=-1", "--shutdown-delay=1s")
	cmd.Env = append(os.Environ(), "NETSERVER_TEST_MAIN=1", "POD_NAME=proc-1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	url := "http://127.0.0.1:" + itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(url + "/hostname"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "proc-1" {
				t.Fatalf("hostname = %q, want POD_NAME proc-1", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("command never listened:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if code, _ := get(t, url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz 200ms after SIGTERM = %d, want 503", code)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("command exited with %v:\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command still running 10s after SIGTERM with a 1s delay")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
