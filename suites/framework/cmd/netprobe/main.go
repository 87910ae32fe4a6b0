// Command netprobe is the suites' client inside pods, on nodes and outside
// them (clusters.Probe): specs run it by name and each provider makes it
// runnable (local runs its built copy in the namespaces; providers with
// real containers ship it in the netserver image, so it must build with
// CGO_ENABLED=0 and need nothing beyond the binary). It tells a refusal
// from a timeout, which Service specs need.
//
//	netprobe [-timeout 2s] http URL    prints the body (a 2xx answer)
//	netprobe [-timeout 2s] status URL  prints "<HTTP status code> <body>" for any answer
//	netprobe [-timeout 2s] udp IP:PORT prints the datagram answered
//	netprobe [-timeout 2s] tcp IP:PORT connects and closes
//
//	netprobe -count N spread URL       N new connections in turn (batch.go)
//	netprobe -count N -source-port P spread URL
//	                                   the same from local ports P..P+N-1
//	netprobe -count N -for D hold URL  N keep-alive connections held for D
//	netprobe -rate R -for D load URL   R new connections a second for D
//	netprobe -rate R -for D udpload IP:PORT  R new UDP flows a second for D
//	netprobe -rate R -for D [-mark-file F -until B] udpstream IP:PORT
//	    one UDP flow: a datagram every 1/R s from one socket (udpstream.go)
//
//	netprobe file exists|touch|rm|cat PATH...  the hold and result files (file.go)
//
//	netprobe now                       prints this host's time, Unix ns (clock offsets)
//	netprobe -for D [-ready-file F -stop-file S] -match RE stamp CMD ARGS...
//	    CMD's output lines matching RE, each with the time it arrived (stamp.go)
//
// On failure it prints "<refused|reset|timeout|unreachable|error> <ms> <error>"
// and exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 2*time.Second, "give up after this long (per request in a batch)")
	count := flag.Int("count", 100, "spread: requests; hold: connections")
	rate := flag.Float64("rate", 20, "load: new connections a second")
	dur := flag.Duration("for", 10*time.Second, "hold, load: how long")
	readyFile := flag.String("ready-file", "", "hold: a file to create once every connection is open")
	stopFile := flag.String("stop-file", "", "hold: end early once this file exists")
	resultFile := flag.String("result-file", "", "batch modes: also write the JSON printed to this file")
	srcPort := flag.Int("source-port", 0, "spread: request i from local port source-port+i, closed with a reset (0: any port)")
	markFile := flag.String("mark-file", "", "udpstream: record the first send after this file exists")
	until := flag.String("until", "", "udpstream: end once this backend answered -until-run times in a row after the mark")
	untilRun := flag.Int("until-run", 5, "udpstream: see -until")
	match := flag.String("match", "", "stamp: keep only output lines matching this regular expression")
	flag.Parse()
	switch flag.Arg(0) {
	case "file":
		os.Exit(fileOp(flag.Args()[1:]))
	case "now":
		fmt.Println(time.Now().UnixNano())
		return
	case "stamp":
		if flag.NArg() < 2 {
			fmt.Fprintln(os.Stderr, "usage: netprobe -for D [-ready-file F -stop-file S] -match RE stamp CMD ARGS...")
			os.Exit(2)
		}
		if err := stamp(flag.Args()[1:], stampOptions{dur: *dur, readyFile: *readyFile, stopFile: *stopFile, match: *match}, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "netprobe stamp:", err)
			os.Exit(1)
		}
		return
	}
	if flag.NArg() != 2 || *count < 1 || *rate <= 0 || *srcPort < 0 || *srcPort > 0 && *srcPort+*count > 65536 {
		fmt.Fprintln(os.Stderr, "usage: netprobe [-timeout D] http URL | status URL | udp IP:PORT | tcp IP:PORT\n"+
			"       netprobe [-timeout D] -count N [-source-port P] spread URL | -count N -for D hold URL | -rate R -for D load URL\n"+
			"       netprobe [-timeout D] -rate R -for D udpload IP:PORT | -rate R -for D [-ready-file F] [-mark-file M -until BACKEND] udpstream IP:PORT")
		os.Exit(2)
	}
	switch flag.Arg(0) {
	case "spread", "hold", "load", "udpload", "udpstream":
		o := streamOptions{rate: *rate, dur: *dur, readyFile: *readyFile, markFile: *markFile, until: *until, untilRun: *untilRun}
		if err := runBatch(flag.Arg(0), flag.Arg(1), batchArgs{count: *count, timeout: *timeout, stopFile: *stopFile, resultFile: *resultFile, srcPort: *srcPort, streamOptions: o}); err != nil {
			fmt.Printf("error 0 %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	began := time.Now()
	out, err := probe(ctx, flag.Arg(0), flag.Arg(1), *timeout)
	if err != nil {
		fmt.Printf("%s %.1f %v\n", class(err), float64(time.Since(began).Microseconds())/1000, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

func probe(ctx context.Context, kind, target string, timeout time.Duration) ([]byte, error) {
	switch kind {
	case "http":
		return get(ctx, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, target)
	case "status":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		// A health check's 503 is an answer, not a failure.
		return append([]byte(fmt.Sprintf("%d ", resp.StatusCode)), body...), nil
	case "tcp":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, err
		}
		conn.Close()
		return []byte("connected\n"), nil
	case "udp":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "udp", target)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if _, err := conn.Write([]byte("netprobe\n")); err != nil {
			return nil, err
		}
		buf := make([]byte, 2048)
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, fmt.Errorf("unknown probe %q: want http, status, udp or tcp", kind)
}

// get is one GET through client; an answer other than 2xx is an error.
func get(ctx context.Context, client *http.Client, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return body, fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	return body, nil
}

// class names the failure the way a Service spec asserts on it.
func class(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	// Reset or closed before the answer: what a client of a dying
	// backend or a dropped connection sees.
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "error"
}
