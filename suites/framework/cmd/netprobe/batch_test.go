package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := l.Addr().(*net.TCPAddr).Port
	l.Close() // a free port; the next two are very likely free too
	for round := range 2 {
		for i := range 3 {
			if r := freshFrom(time.Now(), srv.URL+"/hostname", time.Second, base+i); r.Class != "" || r.Backend != "b1" {
				t.Fatalf("round %d, port %d: %+v, want answered by b1 (a reset close leaves the port free)", round, base+i, r)
			}
		}
	}
	for i := range 3 {
		if n := ports[strconv.Itoa(base+i)]; n != 2 {
			t.Errorf("port %d seen %d times by the server, want 2 (ports seen: %v)", base+i, n, ports)
		}
	}
}
