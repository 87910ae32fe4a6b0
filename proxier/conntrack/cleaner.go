package conntrack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/vishvananda/netlink"

	"github.com/proxyproof/proxyproof/proxier/metrics"
	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// table is the conntrack table of one namespace; a fake stands in for it
// in unit tests.
type table interface {
	List(family netlink.InetFamily) ([]*netlink.ConntrackFlow, error)
	Delete(family netlink.InetFamily, filters ...netlink.CustomConntrackFilter) (int, error)
}

// Cleaner is a stateless reconciler of stale UDP conntrack flows: each
// Clean compares the whole table with the view, so a missed change is
// repaired by the next call.
type Cleaner struct {
	open func() (table, func(), error)
}

// NewCleaner cleans the table of network namespace netnsName ("" = here).
func NewCleaner(netnsName string) *Cleaner {
	return &Cleaner{open: func() (table, func(), error) { return openNetlink(netnsName) }}
}

// Name and AfterSync let the daemon run Clean after every successful sync.
func (c *Cleaner) Name() string { return "conntrack-cleanup" }

// AfterSync is Clean; the count goes to metrics and logs.
func (c *Cleaner) AfterSync(_ context.Context, view *state.View, _ *state.Changes) error {
	_, err := c.Clean(view)
	return err
}

// Clean deletes the stale UDP flows of view's family and returns how many
// it deleted. It must run after the rules of view are programmed: a flow
// deleted before then would be recreated through the old rules.
func (c *Cleaner) Clean(view *state.View) (deleted int, err error) {
	start := time.Now()
	family := v1.IPv4Protocol
	if view != nil && view.Family != "" {
		family = view.Family
	}
	nlFamily := netlink.InetFamily(unix.AF_INET)
	if family == v1.IPv6Protocol {
		nlFamily = unix.AF_INET6
	}
	defer func() {
		metrics.ReconcileConntrackFlowsLatency.WithLabelValues(string(family)).Observe(metrics.SinceInSeconds(start))
		metrics.ReconcileConntrackFlowsDeletedEntriesTotal.WithLabelValues(string(family)).Add(float64(deleted))
	}()

	t, closeTable, err := c.open()
	if err != nil {
		return 0, fmt.Errorf("conntrack cleanup (%s): %w", family, err)
	}
	defer closeTable()

	flows, err := t.List(nlFamily)
	if err != nil {
		if !partial(err) {
			return 0, fmt.Errorf("conntrack cleanup (%s): list flows: %w", family, err)
		}
		// A dump interrupted by table changes still gives usable flows;
		// the next Clean catches what this one missed.
		klog.V(2).InfoS("Conntrack dump interrupted, cleaning with a partial list", "ipFamily", family, "err", err)
	}
	filters := staleFilters(view, flows)
	if len(filters) == 0 {
		klog.V(4).InfoS("No stale conntrack flows", "ipFamily", family, "flows", len(flows), "took", time.Since(start))
		return 0, nil
	}
	deleted, err = t.Delete(nlFamily, filters...)
	if err != nil {
		return deleted, fmt.Errorf("conntrack cleanup (%s): deleted %d stale flows: %w", family, deleted, err)
	}
	klog.V(2).InfoS("Deleted stale conntrack flows", "ipFamily", family, "deleted", deleted, "took", time.Since(start))
	return deleted, nil
}

func partial(err error) bool {
	return errors.Is(err, netlink.ErrDumpInterrupted) || errors.Is(err, unix.EINTR)
}

// netlinkTable is the real table, through a netlink socket opened in the
// target namespace (no conntrack(8) process per flow).
type netlinkTable struct{ h *netlink.Handle }

func openNetlink(ns string) (table, func(), error) {
	nsh, err := netns.Handle(ns)
	if err != nil {
		return nil, nil, err
	}
	defer nsh.Close() // the netlink socket keeps the namespace alive
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, nil, fmt.Errorf("netlink in network namespace %q: %w", ns, err)
	}
	return netlinkTable{h: h}, h.Close, nil
}

func (t netlinkTable) List(family netlink.InetFamily) ([]*netlink.ConntrackFlow, error) {
	return t.h.ConntrackTableList(netlink.ConntrackTable, family)
}

func (t netlinkTable) Delete(family netlink.InetFamily, filters ...netlink.CustomConntrackFilter) (int, error) {
	n, err := t.h.ConntrackDeleteFilters(netlink.ConntrackTable, family, filters...)
	return int(n), err
}
