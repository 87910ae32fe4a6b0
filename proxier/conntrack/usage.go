package conntrack

import (
	"fmt"

	"github.com/prometheus/procfs"

	"github.com/proxyproof/proxyproof/proxier/netns"
)

// Usage is one reading of a namespace's conntrack table.
type Usage struct {
	// Entries is nf_conntrack_count: flows tracked in this namespace.
	Entries uint64
	// Limit is nf_conntrack_max, one value for the whole kernel.
	Limit uint64
	// InsertFailed, Drop and EarlyDrop are the kernel's per-CPU counters of
	// this namespace, summed: flows that could not be inserted (a clash or
	// a full table), packets dropped because no entry could be made, and
	// entries evicted early to make room. They only grow.
	InsertFailed uint64
	Drop         uint64
	EarlyDrop    uint64
}

// UsageSource reads the conntrack usage; a fake stands in for the kernel in
// unit tests.
type UsageSource interface {
	ReadUsage() (Usage, error)
}

// procUsage reads the usage of network namespace ns ("" = here) from
// /proc, from a thread switched into ns.
//
// The per-CPU counters come from /proc/net/stat/nf_conntrack through
// prometheus/procfs (the parser node_exporter uses). The netlink form
// (IPCTNL_MSG_CT_GET_STATS_CPU) would be the same numbers, but
// vishvananda/netlink v1.3.1 does not implement it and the library that
// does (ti-mo/conntrack) would be one more dependency for a file read.
type procUsage struct{ ns string }

// NewUsageReader reads the conntrack usage of namespace ns ("" = here).
func NewUsageReader(ns string) UsageSource { return procUsage{ns: ns} }

func (p procUsage) ReadUsage() (Usage, error) {
	var u Usage
	err := netns.Do(p.ns, func() error {
		count, err := readInt(procNetfilter + "nf_conntrack_count")
		if err != nil {
			return err
		}
		max, err := readInt(procNetfilter + "nf_conntrack_max")
		if err != nil {
			return err
		}
		u.Entries, u.Limit = uint64(count), uint64(max)
		// /proc/net is the thread group leader's namespace; thread-self
		// is the namespace this locked thread was switched into.
		fs, err := procfs.NewFS("/proc/thread-self")
		if err != nil {
			return err
		}
		perCPU, err := fs.ConntrackStat()
		if err != nil {
			return err
		}
		for _, c := range perCPU {
			u.InsertFailed += c.InsertFailed
			u.Drop += c.Drop
			u.EarlyDrop += c.EarlyDrop
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("conntrack usage of network namespace %q: %w", p.ns, err)
	}
	return u, nil
}
