// Package netns runs commands and code inside a named network namespace
// (/run/netns/NAME). The proxier normally runs inside its node's namespace
// and uses the empty name, meaning "where I am"; tests and the local
// provider run it in-process and point it at a node namespace instead.
package netns

import (
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
func Do(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never returned to the scheduler pool after a
		// namespace switch: it exits with the goroutine (no Unlock).
		runtime.LockOSThread()
		target, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("network namespace %q: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter network namespace %q: %w", ns, err)
			return
		}
		errc <- fn()
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
