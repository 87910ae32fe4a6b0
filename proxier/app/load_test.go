package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// load is what a Service's clients do during a mode switch: a stream of new
// connections (each a new NAT decision) and one long-lived connection that
// keeps asking on the flow it opened before the switch.
type load struct {
	mu      sync.Mutex
	newOK   int
	newFail []string
	// failPorts are the local ports of the failed new connections, where
	// known (sport=N in conntrack's listing).
	failPorts []string
	// connectTimeout bounds a new connection's connect (2 s when 0: one
	// SYN retransmit); the request after it gets 2 s more.
	connectTimeout time.Duration
	// slow are the new connections whose connect took a SYN retransmit
	// (a second or more) yet succeeded.
	slow, slowPorts []string
	longOK          int
	longFail        []string
	// longAt are the times the long-lived connection's requests were
	// answered: a gap in them around a failed new connection says the
	// client's own kernel or process stalled (the kernel VM's one vCPU
	// is shared by everything), not that the Service's rules had a gap.
	longAt []time.Time
	// nextPort is the local port of the next new connection: chosen, not
	// left to connect(), so a connection that times out before it is
	// established still names its flow, whose conntrack events then tell
	// a SYN dropped before conntrack from one NATed and never answered.
	nextPort int
	// stalls are the times the clients' process could not run: a 20 ms
	// sleep that came back over stallAfter late. The kernel VM's clock
	// is the host's, so a vCPU starved by a loaded host shows here too.
	stalls []stall
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// newConnEvery paces each new-connection worker: with 3 workers ~300 new
// connections/s, several in flight at once so a gap is seen while one probe
// waits out its timeout, without starving two cores.
const newConnEvery = 10 * time.Millisecond

// startLoad opens the long-lived connection from namespace ns to addr and
// starts both clients; it fails if the Service does not answer now.
func startLoad(ns, addr string, workers int, connectTimeout time.Duration) (*load, error) {
	c, err := netns.Dial(context.Background(), &net.Dialer{Timeout: 2 * time.Second}, ns, "tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("long-lived connection to %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel, connectTimeout: connectTimeout, nextPort: firstClientPort}
	l.wg.Add(2 + workers)
	go func() {
		defer l.wg.Done()
		l.watchStalls(ctx)
	}()
	go func() {
		defer l.wg.Done()
		defer c.Close()
		l.longLived(ctx, c, addr)
	}()
	for range workers {
		go func() {
			defer l.wg.Done()
			l.newConnections(ctx, ns, addr)
		}()
	}
	return l, nil
}

// Local ports of the new connections, below the ephemeral range
// (32768-60999) so nothing else on the client takes them, each used once:
// 15,000 is more than any switch here opens (about 3,000 on the host).
const firstClientPort, lastClientPort = 17000, 31999

func (l *load) newConnections(ctx context.Context, ns, addr string) {
	for ctx.Err() == nil {
		l.mu.Lock()
		local := l.nextPort
		l.nextPort++
		l.mu.Unlock()
		if local > lastClientPort {
			local = 0 // the kernel's choice: the port is then unknown on a timeout
		}
		port, took, err := newConnection(ns, addr, local, l.connectTimeout)
		if errors.Is(err, syscall.EADDRINUSE) {
			continue // the port is someone else's: not the Service's failure
		}
		l.mu.Lock()
		if err == nil && took >= time.Second {
			l.slow = append(l.slow, fmt.Sprintf("port %s connected in %v", port, took.Round(time.Millisecond)))
			l.slowPorts = append(l.slowPorts, port)
		}
		if err != nil {
			l.newFail = append(l.newFail, time.Now().Format("15:04:05.000")+" "+err.Error())
			if port != "" {
				l.failPorts = append(l.failPorts, port)
			}
		} else {
			l.newOK++
		}
		l.mu.Unlock()
		time.Sleep(newConnEvery)
	}
}

// newConnection asks once on a new connection from ns, as behaviour.HTTP
// does (Connection: close, probeTimeout in all), but says which step
// failed and from which local port, so a failure can be placed: a lost
// SYN shows as a connect that took a retransmit or timed out, a lost
// answer as a connected request that timed out.
func newConnection(ns, addr string, localPort int, connectTimeout time.Duration) (port string, connected time.Duration, err error) {
	if connectTimeout == 0 {
		connectTimeout = 2 * time.Second
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	d := &net.Dialer{}
	if localPort != 0 {
		d.LocalAddr = &net.TCPAddr{Port: localPort}
		port = strconv.Itoa(localPort)
	}
	c, err := netns.Dial(ctx, d, ns, "tcp4", addr)
	if err != nil {
		return port, 0, fmt.Errorf("started %s from port %s: connect to %s: %w", start.Format("15:04:05.000"), port, addr, err)
	}
	defer c.Close()
	_, port, _ = net.SplitHostPort(c.LocalAddr().String())
	connected = time.Since(start)
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fail := func(step string, err error) error {
		return fmt.Errorf("started %s from %s, connected in %v: %s: %w", start.Format("15:04:05.000"), c.LocalAddr(), connected.Round(time.Millisecond), step, err)
	}
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return port, connected, fail("write", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return port, connected, fail("read", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		return port, connected, fail("answer", fmt.Errorf("status %s, %v", resp.Status, err))
	}
	return port, connected, nil
}

// longLived asks over the same TCP connection (HTTP/1.1 keep-alive) until
// ctx ends or the connection breaks; a break is one failure and the end.
func (l *load) longLived(ctx context.Context, c net.Conn, addr string) {
	r := bufio.NewReader(c)
	for ctx.Err() == nil {
		err := ask(c, r, addr)
		l.mu.Lock()
		if err != nil {
			l.longFail = append(l.longFail, err.Error())
			l.mu.Unlock()
			return
		}
		l.longOK++
		l.longAt = append(l.longAt, time.Now())
		l.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

func ask(c net.Conn, r *bufio.Reader, addr string) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		return fmt.Errorf("long-lived connection %s: write: %w", c.LocalAddr(), err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("long-lived connection %s: read: %w", c.LocalAddr(), err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		return fmt.Errorf("long-lived connection %s: status %s, %v", c.LocalAddr(), resp.Status, err)
	}
	return nil
}

// stall is a time the clients' process did not run: from at, late.
type stall struct {
	at   time.Time
	late time.Duration
}

// stallAfter is how late a 20 ms sleep may come back before it counts.
const stallAfter = 500 * time.Millisecond

func (l *load) watchStalls(ctx context.Context) {
	const tick = 20 * time.Millisecond
	for ctx.Err() == nil {
		before := time.Now()
		time.Sleep(tick)
		if late := time.Since(before) - tick; late > stallAfter {
			l.mu.Lock()
			l.stalls = append(l.stalls, stall{before, late})
			l.mu.Unlock()
		}
	}
}

// finish stops the clients and returns what they saw.
func (l *load) finish() (newOK int, newFail []string, longOK int, longFail []string) {
	l.stop()
	l.wg.Wait()
	return l.newOK, l.newFail, l.longOK, l.longFail
}
