package healthz

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

// scratchNetns makes an isolated namespace with loopback up and an
// interface holding addr (if not empty); it has no route out. Skips when
// not root.
func scratchNetns(t *testing.T, addr string) string {
	t.Helper()
	name := netnstest.New(t, "healthz")
	var cmds [][]string
	if addr != "" {
		cmds = append(cmds,
			// No dummy driver here; a veth pair with both ends inside does.
			[]string{"ip", "link", "add", "node0", "type", "veth", "peer", "name", "node0p"},
			[]string{"ip", "link", "set", "node0p", "up"},
			[]string{"ip", "addr", "add", addr, "dev", "node0"},
			[]string{"ip", "link", "set", "node0", "up"})
	}
	for _, c := range cmds {
		if out, err := netns.Cmd(name, c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v in %s: %v: %s", c, name, err, out)
		}
	}
	return name
}

// getIn does an HTTP GET from inside namespace ns: the socket is dialled on
// a namespaced thread, then handed to the client (http.Transport would dial
// from its own goroutines, in the test's namespace).
func getIn(ns, url string) (int, string, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	var conn net.Conn
	if err := netns.Do(ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", req.URL.Host, 2*time.Second)
		return err
	}); err != nil {
		return 0, "", nil, err
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       func(context.Context, string, string) (net.Conn, error) { return conn, nil },
	}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header, err
}
