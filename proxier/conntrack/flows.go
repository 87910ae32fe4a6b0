package conntrack

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vishvananda/netlink"
)

// dumpAttempts is how many times Flows asks again for a dump that the
// table's changes cut short (the kernel marks such a dump interrupted);
// a node under load changes its table all the time, and a whole dump
// usually comes within a few.
const dumpAttempts = 5

// Flows lists the conntrack table of network namespace ns ("" = here),
// both families. A dump cut short by table changes is asked for again,
// and is an error if it never comes whole: the caller (leaving ipvs)
// decides from what is missing too, and asks again later.
func Flows(ns string) ([]*netlink.ConntrackFlow, error) {
	t, closeTable, err := openNetlink(ns)
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	defer closeTable()
	return wholeFlows(t)
}

func wholeFlows(t table) ([]*netlink.ConntrackFlow, error) {
	var out []*netlink.ConntrackFlow
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		var flows []*netlink.ConntrackFlow
		var err error
		for range dumpAttempts {
			if flows, err = t.List(family); err == nil || !partial(err) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("conntrack: list flows (%d tries): %w", dumpAttempts, err)
		}
		out = append(out, flows...)
	}
	return out, nil
}
