package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// netlinkAt opens a netlink handle in namespace name.
func netlinkAt(name string) (*netlink.Handle, error) {
	ns, err := netns.Handle(name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	// Route family only: netlink.NewHandleAt without families also opens
	// xfrm, which a kernel without xfrm_user (the kernel VM) refuses.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
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
	return netns.Do(ns, func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}
