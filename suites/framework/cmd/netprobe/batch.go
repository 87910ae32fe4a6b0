package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// Batch modes print one JSON object (package batch) and exit 0 even when
// requests failed: the failures are the measurement.
//
//	netprobe -count N spread URL  N new connections one after another
//	netprobe -count N -source-port P spread URL
//	    the same, request i from local port P+i: a second run repeats
//	    every source address and port (a hashing scheduler's key); each
//	    connection ends with a reset, so no TIME_WAIT holds the port
//	netprobe -count N -for D [-ready-file F] hold URL
//	    N keep-alive connections held for D, each asked again every 200 ms;
//	    F is created once every connection answered (or failed) once;
//	    with -stop-file S it ends early once S exists
//	netprobe -rate R -for D load URL
//	    R new connections a second for D, each its own request

// batchArgs are a batch mode's flags; rate, dur and readyFile are in the
// stream options, which udpstream reads whole.
type batchArgs struct {
	count    int
	timeout  time.Duration
	stopFile string
	// resultFile receives a copy of the batch's JSON.
	resultFile string
	srcPort    int
	streamOptions
}

func runBatch(kind, target string, a batchArgs) error {
	b := batch.Batch{Kind: kind, Start: time.Now()}
	var err error
	switch kind {
	case "spread":
		for i := range a.count {
			if a.srcPort > 0 {
				b.Requests = append(b.Requests, freshFrom(b.Start, target, a.timeout, a.srcPort+i))
				continue
			}
			b.Requests = append(b.Requests, fresh(b.Start, target, a.timeout))
		}
	case "hold":
		b.Requests, err = hold(b.Start, target, a.count, a.dur, a.timeout, a.readyFile, a.stopFile)
	case "load":
		b.Requests = load(a.rate, a.dur, func() batch.Request { return fresh(b.Start, target, a.timeout) })
	case "udpload":
		b.Requests = load(a.rate, a.dur, func() batch.Request { return udpFresh(b.Start, target, a.timeout) })
	case "udpstream":
		b, err = udpStream(b.Start, target, a.streamOptions)
	}
	if err != nil {
		return err
	}
	out, err := json.Marshal(b)
	if err != nil {
		return err
	}
	out = append(out, '\n')
	if a.resultFile != "" {
		// A copy the caller can read if the exec stream loses stdout.
		if err := os.WriteFile(a.resultFile, out, 0o644); err != nil {
			return fmt.Errorf("result file: %w", err)
		}
	}
	_, err = os.Stdout.Write(out)
	return err
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

// freshFrom makes one request on a new connection from local port
// port. The connection closes with a reset (SO_LINGER 0): neither end
// keeps it in TIME_WAIT, so the same port can connect again at once.
func freshFrom(start time.Time, target string, timeout time.Duration, port int) batch.Request {
	r := batch.Request{At: since(start)}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Control: resetOnClose}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		// The last connection from port may still hold its 4-tuple for
		// the moment its reset takes (connect: EADDRNOTAVAIL, seen on
		// loopback when the same port asks again at once): wait it out
		// within the request's timeout rather than fail the request.
		for {
			c, err := d.DialContext(ctx, network, addr)
			if !errors.Is(err, syscall.EADDRNOTAVAIL) || ctx.Err() != nil {
				return c, err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	body, err := get(ctx, client, target)
	r.Ms = since(start) - r.At
	if err != nil {
		r.Class, r.Error = class(err), fmt.Sprintf("from port %d: %v", port, err)
		return r
	}
	r.Backend = strings.TrimSpace(string(body))
	return r
}

// resetOnClose sets SO_REUSEADDR (the port may be bound again while the
// last reset is in flight) and SO_LINGER 0 (close sends a reset).
func resetOnClose(_, _ string, c syscall.RawConn) error {
	var sockErr error
	err := c.Control(func(fd uintptr) {
		if sockErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); sockErr != nil {
			return
		}
		sockErr = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	})
	return errors.Join(err, sockErr)
}

// load starts one (a new connection or flow) rate times a second for
// dur, each concurrently.
func load(rate float64, dur time.Duration, one func() batch.Request) []batch.Request {
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
				r := one()
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}()
		}
	}
}

// hold opens count keep-alive connections and asks each again every
// 200 ms until dur ends. A connection the server closed between requests
// (reset or EOF on a connection that answered before) is reopened once
// for that request, as HTTP clients do; any other failure ends it.
func hold(start time.Time, target string, count int, dur, timeout time.Duration, readyFile, stopFile string) ([]batch.Request, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	conns := make([]*held, count)
	for i := range conns {
		conns[i] = &held{}
	}
	var out []batch.Request
	for end := time.Now().Add(dur); ; {
		for i, h := range conns {
			if h.dead {
				continue
			}
			r := batch.Request{At: since(start), Conn: i}
			backend, err := h.get(u, timeout)
			if err != nil && h.answered && class(err) == "reset" {
				h.close()
				r.Reconnected = true
				backend, err = h.get(u, timeout)
			}
			r.Ms, r.Backend = since(start)-r.At, backend
			if err != nil {
				r.Class, r.Error = class(err), err.Error()
				h.close()
				h.dead = true
			}
			out = append(out, r)
		}
		if readyFile != "" {
			// Every connection asked once: the caller may change the Service.
			if err := os.WriteFile(readyFile, nil, 0o644); err != nil {
				return out, fmt.Errorf("ready file: %w", err)
			}
			readyFile = ""
		}
		if time.Now().After(end) || stopFile != "" && exists(stopFile) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, h := range conns {
		h.close()
	}
	return out, nil
}

// held is one held connection.
type held struct {
	conn     net.Conn
	rd       *bufio.Reader
	answered bool // it answered a request before
	dead     bool // it failed: not asked again
}

// get asks on the connection, opening it first if needed.
func (h *held) get(u *url.URL, timeout time.Duration) (string, error) {
	if h.conn == nil {
		c, err := net.DialTimeout("tcp", u.Host, timeout)
		if err != nil {
			return "", err
		}
		h.conn, h.rd, h.answered = c, bufio.NewReader(c), false
	}
	backend, err := keepAliveGet(h.conn, h.rd, u, timeout)
	if err == nil {
		h.answered = true
	}
	return backend, err
}

func (h *held) close() {
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
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

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
