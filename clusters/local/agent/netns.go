package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNetns runs fn on a thread switched into namespace name ("" = where the
// agent runs) and switches the thread back afterwards. Unlike a thread left
// to die in the namespace, a restored thread never ends, so children forked
// from it earlier keep their parent-death signal quiet.
func inNetns(name string, fn func() error) error {
	if name == "" {
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
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %q: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %q: %w", name, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else: the goroutine ends locked and Go retires the thread.
		errc <- err
	}()
	return <-errc
}

// nsHandle opens namespace name ("" = the current one).
func nsHandle(name string) (netns.NsHandle, error) {
	if name == "" {
		return netns.Get()
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		return h, fmt.Errorf("network namespace %q: %w", name, err)
	}
	return h, nil
}

// netlinkAt opens a netlink handle in namespace name.
func netlinkAt(name string) (*netlink.Handle, error) {
	ns, err := nsHandle(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in namespace %q: %w", name, err)
	}
	return h, nil
}

// setSysctl writes a net sysctl (key is the path below /proc/sys, slashed,
// since interface names may hold dots) inside namespace ns: /proc/sys/net
// follows the writing thread's namespace.
func setSysctl(ns, key, value string) error {
	path := filepath.Join("/proc/sys", key)
	return inNetns(ns, func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}
