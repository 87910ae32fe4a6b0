// Package netns runs commands and code inside a named network namespace
// (/run/netns/NAME). The proxier normally runs inside its node's namespace
// and uses the empty name, meaning "where I am"; tests and the local
// provider run it in-process and point it at a node namespace instead.
package netns

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netns"
)

// Cmd builds a command that runs in namespace ns ("" = the current one).
func Cmd(ns, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Do runs fn on an OS thread switched into namespace ns, so sockets and
// netlink handles fn opens belong to ns. ns == "" runs fn as is.
//
// The thread is switched back afterwards and returned to the scheduler;
// only if that fails does it stay locked and exit with the goroutine. A
// thread must not die casually: a child started from it with Pdeathsig
// (the control plane's components) is killed when it does.
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %q: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %q: %w", ns, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else: the thread stays locked in ns and exits with this goroutine
		errc <- err
	}()
	return <-errc
}

// Handle opens a handle on namespace ns for netlink calls
// (netlink.NewHandleAt). ns == "" is the current namespace.
func Handle(ns string) (netns.NsHandle, error) {
	if ns == "" {
		return netns.Get()
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		return h, fmt.Errorf("network namespace %q: %w", ns, err)
	}
	return h, nil
}

// Listen opens a listener in namespace ns ("" = here). The socket stays in
// ns, so it may be served from any goroutine afterwards.
func Listen(ns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := Do(ns, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil && ns != "" {
		return nil, fmt.Errorf("listen on %s in network namespace %q: %w", addr, ns, err)
	}
	return ln, err
}

// ListenPacket is Listen for datagram sockets.
func ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := Do(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil && ns != "" {
		return nil, fmt.Errorf("listen on %s in network namespace %q: %w", addr, ns, err)
	}
	return pc, err
}

// Dial connects from namespace ns ("" = here) with d; the connection
// stays in ns, so it may be used from any goroutine afterwards.
func Dial(ctx context.Context, d *net.Dialer, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
