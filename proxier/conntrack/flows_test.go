package conntrack

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// interruptedTable cuts its first dumps short, as a table under load does.
type interruptedTable struct {
	flows      []*netlink.ConntrackFlow
	interrupts int
}

func (f *interruptedTable) List(family netlink.InetFamily) ([]*netlink.ConntrackFlow, error) {
	if family != unix.AF_INET {
		return nil, nil
	}
	if f.interrupts > 0 {
		f.interrupts--
		return f.flows[:1], netlink.ErrDumpInterrupted
	}
	return f.flows, nil
}

func (f *interruptedTable) Delete(netlink.InetFamily, ...netlink.CustomConntrackFilter) (int, error) {
	return 0, errors.New("not in this test")
}

// Leaving ipvs decides from what the dump lacks too: a dump cut short is
// asked for again, and never passed on as if it were whole.
func TestFlowsAsksAgainForADumpCutShort(t *testing.T) {
	all := []*netlink.ConntrackFlow{{FamilyType: unix.AF_INET}, {FamilyType: unix.AF_INET}, {FamilyType: unix.AF_INET}}
	got, err := wholeFlows(&interruptedTable{flows: all, interrupts: dumpAttempts - 1})
	if err != nil || len(got) != len(all) {
		t.Errorf("after %d interrupted dumps: %d flows, %v; want all %d", dumpAttempts-1, len(got), err, len(all))
	}
	got, err = wholeFlows(&interruptedTable{flows: all, interrupts: dumpAttempts})
	if !errors.Is(err, netlink.ErrDumpInterrupted) || got != nil {
		t.Errorf("every dump interrupted: %d flows, %v; want no flows and the interruption", len(got), err)
	}
}
