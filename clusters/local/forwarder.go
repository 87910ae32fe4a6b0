package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// RunForwarder is the API server forwarder (`localcluster forward`): it
// listens on every address of listen inside network namespace ns (the
// underlay, where the nodes reach it) and relays each connection to
// target, dialled from the caller's namespace (the host, where the
// apiserver listens on loopback). It is a plain TCP relay: TLS stays end
// to end. It returns when ctx ends.
func RunForwarder(ctx context.Context, ns string, listen []string, target string) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	// A socket belongs to the namespace of the thread that creates it;
	// accepting on it later from any thread is fine.
	if err := netns.Do(ns, func() error {
		for _, a := range listen {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return err
			}
			ls = append(ls, l)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("forwarder in namespace %s: listen: %w", ns, err)
	}
	klog.InfoS("Forwarding", "listen", listen, "netns", ns, "target", target)
	var wg sync.WaitGroup
	defer wg.Wait()
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					errc <- fmt.Errorf("forwarder %s: accept: %w", l.Addr(), err)
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					relay(ctx, c, target)
				}()
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func relay(ctx context.Context, c net.Conn, target string) {
	defer c.Close()
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		klog.ErrorS(err, "Forwarder cannot reach the apiserver", "target", target, "client", c.RemoteAddr())
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other direction can still drain.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}

// dialerIn returns a DialContext that opens its connections inside
// network namespace ns: the runner reaching node or pod addresses
// without ever routing them through the host.
func dialerIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return netns.Dial(ctx, &net.Dialer{Timeout: 5 * time.Second}, ns, network, addr)
	}
}

// httpClientIn is an HTTP client whose connections live in ns.
func httpClientIn(ns string) *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: dialerIn(ns), DisableKeepAlives: true},
	}
}

// waitListening waits until something accepts TCP connections on addr
// inside ns.
func waitListening(ctx context.Context, ns, addr string, d *daemon) error {
	dial := dialerIn(ns)
	for {
		c, err := dial(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if d != nil && d.exited() {
			return d.failure("exited before listening on %s", addr)
		}
		select {
		case <-ctx.Done():
			return errors.Join(context.Cause(ctx), fmt.Errorf("nothing listens on %s in namespace %s: %w", addr, ns, err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
