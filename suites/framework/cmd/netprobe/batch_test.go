package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

func TestHeldConnectionsSurviveAServerThatClosesIdleOnesAndReportOneThatDies(t *testing.T) {
	keep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "b1") }))
	defer keep.Close()
	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // closes after every answer
		fmt.Fprint(w, "b2")
	}))
	defer closing.Close()

	reqs, err := hold(time.Now(), keep.URL+"/hostname", 2, 450*time.Millisecond, time.Second, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.Class != "" || r.Backend != "b1" || r.Reconnected {
			t.Fatalf("a keep-alive server: request %+v, want answered by b1 on the held connection", r)
		}
	}
	if len(reqs) < 4 {
		t.Errorf("2 connections for 450 ms asked every 200 ms: %d requests, want at least 4", len(reqs))
	}

	reqs, _ = hold(time.Now(), closing.URL+"/hostname", 1, 450*time.Millisecond, time.Second, "", "")
	reconnected := 0
	for _, r := range reqs {
		if r.Class != "" {
			t.Fatalf("a server closing idle connections: request %+v failed, want it reopened", r)
		}
		if r.Reconnected {
			reconnected++
		}
	}
	if reconnected == 0 {
		t.Errorf("the server closed the connection after every answer, yet no request says it reconnected: %+v", reqs)
	}
}

func TestSpreadClassifiesARefusedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	r := fresh(time.Now(), "http://"+addr+"/hostname", time.Second)
	if r.Class != "refused" || r.Backend != "" {
		t.Errorf("request to a closed port = %+v, want class refused", r)
	}
}

func TestSpreadFromFixedSourcePortsRepeatsEveryPortAtOnce(t *testing.T) {
	var mu sync.Mutex
	ports := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		ports[port]++
		mu.Unlock()
		fmt.Fprint(w, "b1")
	}))
	defer srv.Close()
	fixed := freePorts(t, 3)
	for round := range 2 {
		for _, p := range fixed {
			if r := freshFrom(time.Now(), srv.URL+"/hostname", time.Second, p); r.Class != "" || r.Backend != "b1" {
				t.Fatalf("round %d, port %d: %+v, want answered by b1 (a reset close leaves the port free)", round, p, r)
			}
		}
	}
	for _, p := range fixed {
		if n := ports[strconv.Itoa(p)]; n != 2 {
			t.Errorf("port %d seen %d times by the server, want 2 (ports seen: %v)", p, n, ports)
		}
	}
}

// freePorts returns n ports below the ephemeral range (so no other test's
// connect can take one between here and its use: in CI go test runs the
// packages side by side, and a port picked from the ephemeral range was
// taken once) that nothing listens on now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for p := 20000 + rand.IntN(8000); len(out) < n && p < 32000; p++ {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatalf("found only %d free ports below 32000, want %d", len(out), n)
	}
	return out
}

// A batch's result survives an exec stream that loses stdout: the same
// JSON is in -result-file, and "file cat" prints it.
func TestABatchLeavesItsResultInTheResultFileForFileCat(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "b1") }))
	defer srv.Close()
	file := t.TempDir() + "/result.json"
	if err := runBatch("spread", srv.URL, batchArgs{count: 3, timeout: 2 * time.Second, resultFile: file}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var b batch.Batch
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("result file %q: %v", data, err)
	}
	if len(b.Requests) != 3 || b.Requests[0].Backend != "b1" {
		t.Errorf("result file holds %+v, want 3 requests answered b1", b.Requests)
	}
	if code := fileOp([]string{"cat", file}); code != 0 {
		t.Errorf("netprobe file cat = %d", code)
	}
}
