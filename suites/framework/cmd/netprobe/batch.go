package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// Batch modes print one JSON object (package batch) and exit 0 even when
// requests failed: the failures are the measurement.
//
//	netprobe -count N spread URL  N new connections one after another
//	netprobe -count N -for D hold URL
//	    N keep-alive connections held for D, each asked again every 200 ms
//	netprobe -rate R -for D load URL
//	    R new connections a second for D, each its own request

func runBatch(kind, target string, count int, rate float64, dur, timeout time.Duration) error {
	b := batch.Batch{Start: time.Now()}
	var err error
	switch kind {
	case "spread":
		for range count {
			b.Requests = append(b.Requests, fresh(b.Start, target, timeout))
		}
	case "hold":
		b.Requests, err = hold(b.Start, target, count, dur, timeout)
	case "load":
		b.Requests = load(b.Start, target, rate, dur, timeout)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(b)
}

func since(start time.Time) float64 { return float64(time.Since(start).Microseconds()) / 1000 }

// fresh makes one request on a new connection.
func fresh(start time.Time, target string, timeout time.Duration) batch.Request {
	r := batch.Request{At: since(start)}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	body, err := probe(ctx, "http", target, timeout)
	r.Ms = since(start) - r.At
	if err != nil {
		r.Class, r.Error = class(err), err.Error()
		return r
	}
	r.Backend = strings.TrimSpace(string(body))
	return r
}

// load starts rate new connections a second for dur, each concurrently.
func load(start time.Time, target string, rate float64, dur, timeout time.Duration) []batch.Request {
	var mu sync.Mutex
	var out []batch.Request
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for end := time.After(dur); ; {
		select {
		case <-end:
			wg.Wait()
			return out
		case <-tick.C:
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := fresh(start, target, timeout)
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}()
		}
	}
}

// hold opens count keep-alive connections and asks each again every
// 200 ms until dur ends; a connection that fails once is not reopened.
func hold(start time.Time, target string, count int, dur, timeout time.Duration) ([]batch.Request, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	type held struct {
		conn net.Conn
		rd   *bufio.Reader
	}
	conns := make([]*held, count)
	var out []batch.Request
	ask := func(i int) {
		h := conns[i]
		r := batch.Request{At: since(start), Conn: i}
		if h == nil {
			c, err := net.DialTimeout("tcp", u.Host, timeout)
			if err != nil {
				r.Class, r.Error, r.Ms = class(err), err.Error(), since(start)-r.At
				out = append(out, r)
				conns[i] = &held{}
				return
			}
			h = &held{conn: c, rd: bufio.NewReader(c)}
			conns[i] = h
		}
		if h.conn == nil {
			return // failed before: not asked again
		}
		backend, err := keepAliveGet(h.conn, h.rd, u, timeout)
		r.Ms = since(start) - r.At
		if err != nil {
			r.Class, r.Error = class(err), err.Error()
			h.conn.Close()
			h.conn = nil
		}
		r.Backend = backend
		out = append(out, r)
	}
	for end := time.Now().Add(dur); ; {
		for i := range conns {
			ask(i)
		}
		if time.Now().After(end) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, h := range conns {
		if h != nil && h.conn != nil {
			h.conn.Close()
		}
	}
	return out, nil
}

// keepAliveGet sends one GET on an open connection and reads the answer,
// leaving the connection open.
func keepAliveGet(c net.Conn, rd *bufio.Reader, u *url.URL, timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}
