package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// scratchNetns makes an isolated namespace with only loopback up; it has no
// route anywhere. Skips when not root.
func scratchNetns(t *testing.T) string {
	t.Helper()
	return netnstest.New(t, "metrics")
}

// getIn does an HTTP GET from inside namespace ns. Only the socket must be
// made there (http.Transport dials on goroutines of its own, which would be
// in the test's namespace), so dial on a namespaced thread and hand the
// connection to the client.
func getIn(ns, url string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	var conn net.Conn
	if err := netns.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", req.URL.Host, 2*time.Second)
		return err
	}); err != nil {
		return 0, "", err
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       func(context.Context, string, string) (net.Conn, error) { return conn, nil },
	}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestKernelServeListensInsideTheNamespace(t *testing.T) {
	ns := scratchNetns(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:10249", "iptables", nil, false, ns) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	var code int
	var body string
	var err error
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, body, err = getIn(ns, "http://127.0.0.1:10249/proxyMode"); err == nil {
			break
		}
	}
	if err != nil || code != http.StatusOK || body != "iptables" {
		t.Fatalf("GET /proxyMode in %s = %d %q %v, want 200 \"iptables\"", ns, code, body, err)
	}

	// The socket belongs to the scratch namespace: from the test's own
	// namespace the same address must not reach this server.
	conn, err := net.DialTimeout("tcp", "127.0.0.1:10249", 200*time.Millisecond)
	if err == nil {
		conn.Close()
		t.Log("something else listens on 127.0.0.1:10249 in the host namespace; cannot prove isolation")
	}
}
