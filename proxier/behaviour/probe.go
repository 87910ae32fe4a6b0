package behaviour

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// probeTimeout bounds one probe: a refusal arrives in milliseconds, so a
// probe that takes this long is a timeout, which tests tell apart.
const probeTimeout = 2 * time.Second

// Outcome classifies a failed probe as a user would see it.
type Outcome string

const (
	Answered Outcome = "answered"
	Refused  Outcome = "refused"
	TimedOut Outcome = "timed out"
	Other    Outcome = "other error"
)

func classify(err error) Outcome {
	var ne net.Error
	switch {
	case err == nil:
		return Answered
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return TimedOut
	}
	return Other
}

// dialIn connects from namespace ns; the socket stays in ns.
func dialIn(ctx context.Context, ns, network string, local *net.UDPAddr, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: probeTimeout}
	if local != nil {
		d.LocalAddr = local
	}
	return netns.Dial(ctx, d, ns, network, addr)
}

// HTTP makes one new TCP connection from ns to addr and returns the answer.
func HTTP(ns, addr string) (Answer, Outcome, error) {
	client := &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			DisableKeepAlives: true, // every probe is a new connection, so a new backend choice
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				return dialIn(ctx, ns, "tcp4", nil, a)
			},
		},
	}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		return Answer{}, classify(err), fmt.Errorf("GET http://%s/ from %s: %w", addr, ns, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, classify(err), err
	}
	if resp.StatusCode != http.StatusOK {
		return Answer{}, Other, fmt.Errorf("GET http://%s/ from %s: status %s: %s", addr, ns, resp.Status, body)
	}
	a, err := parseAnswer(body)
	if err != nil {
		return a, Other, err
	}
	return a, Answered, nil
}

// HTTPStatus returns the status code of GET url from ns (health checks).
func HTTPStatus(ns, url string) (int, error) {
	client := &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				return dialIn(ctx, ns, "tcp4", nil, a)
			},
		},
	}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// UDP sends one datagram from ns to addr and waits for the answer. srcPort 0
// picks a fresh source port; a fixed one reuses the same conntrack flow.
func UDP(ns, addr string, srcPort int) (Answer, Outcome, error) {
	var local *net.UDPAddr
	if srcPort != 0 {
		local = &net.UDPAddr{Port: srcPort}
	}
	c, err := dialIn(context.Background(), ns, "udp4", local, addr)
	if err != nil {
		return Answer{}, classify(err), err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		return Answer{}, classify(err), err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return Answer{}, classify(err), fmt.Errorf("UDP %s from %s: %w", addr, ns, err)
	}
	a, err := parseAnswer(buf[:n])
	if err != nil {
		return a, Other, err
	}
	return a, Answered, nil
}
