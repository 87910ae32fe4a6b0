package conntrack

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vishvananda/netlink"
)

// Flows lists the conntrack table of network namespace ns ("" = here),
// both families. A dump cut short by table changes is an error: the
// caller (leaving ipvs) decides from what is missing too, and asks again.
func Flows(ns string) ([]*netlink.ConntrackFlow, error) {
	t, closeTable, err := openNetlink(ns)
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	defer closeTable()
	var out []*netlink.ConntrackFlow
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := t.List(family)
		if err != nil {
			return nil, fmt.Errorf("conntrack: list flows: %w", err)
		}
		out = append(out, flows...)
	}
	return out, nil
}
