package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// streamOptions are udpstream's: how it is told the Service changed and
// when it may stop early.
type streamOptions struct {
	rate      float64
	dur       time.Duration
	readyFile string // created once a backend answered, or 3 datagrams failed
	markFile  string // the caller creates it right after its change
	until     string // stop after untilRun answers in a row from this backend
	untilRun  int
}

// udpStream sends one datagram every 1/rate s from one socket, so every
// datagram belongs to one conntrack flow (one source port), as a DNS or
// statsd client's do, and reads the answer of each. A refusal (ICMP port
// unreachable from a Service without endpoints) leaves the socket open: the
// client goes on sending. MarkAt is the first send after markFile exists.
func udpStream(start time.Time, target string, o streamOptions) (batch.Batch, error) {
	b := batch.Batch{Kind: "udpstream", Start: start}
	conn, err := net.Dial("udp", target)
	if err != nil {
		return b, err
	}
	defer conn.Close()
	b.Source = conn.LocalAddr().String()
	interval := time.Duration(float64(time.Second) / o.rate)
	buf := make([]byte, 2048)
	run := 0
	for end := start.Add(o.dur); time.Now().Before(end); {
		sent := time.Now()
		if b.MarkAt == nil && o.markFile != "" && exists(o.markFile) {
			at := since(start)
			b.MarkAt = &at
		}
		r := batch.Request{At: since(start)}
		_ = conn.SetDeadline(sent.Add(interval))
		_, err := conn.Write([]byte("netprobe\n"))
		n := 0
		if err == nil {
			n, err = conn.Read(buf)
		}
		r.Ms = since(start) - r.At
		if err != nil {
			r.Class, r.Error = class(err), err.Error()
		} else if f := strings.Fields(string(buf[:n])); len(f) > 0 {
			r.Backend = f[0]
		}
		b.Requests = append(b.Requests, r)
		if o.readyFile != "" && (r.OK() || len(b.Requests) >= 3) {
			if err := os.WriteFile(o.readyFile, nil, 0o644); err != nil {
				return b, fmt.Errorf("ready file: %w", err)
			}
			o.readyFile = ""
		}
		run = next(run, r, b.MarkAt != nil, o.until)
		if o.until != "" && run >= o.untilRun {
			break
		}
		time.Sleep(time.Until(sent.Add(interval)))
	}
	return b, nil
}

// next counts answers in a row from until after the mark.
func next(run int, r batch.Request, marked bool, until string) int {
	if marked && r.OK() && r.Backend == until {
		return run + 1
	}
	return 0
}

// udpFresh sends one datagram from a new socket and reads the answer: a
// new conntrack flow each time.
func udpFresh(start time.Time, target string, timeout time.Duration) batch.Request {
	r := batch.Request{At: since(start)}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	body, err := probe(ctx, "udp", target, timeout)
	r.Ms = since(start) - r.At
	if err != nil {
		r.Class, r.Error = class(err), err.Error()
		return r
	}
	if f := strings.Fields(string(body)); len(f) > 0 {
		r.Backend = f[0]
	}
	return r
}
