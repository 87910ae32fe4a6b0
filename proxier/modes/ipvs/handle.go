package ipvs

import (
	"fmt"
	"sync"

	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// Interface is the seam between this mode and the kernel's IPVS table:
// Handle talks netlink in a namespace, Fake keeps the table in memory.
// Its methods are moby/ipvs's, so the real one is a thin wrapper.
type Interface interface {
	GetServices() ([]*ipvs.Service, error)
	NewService(*ipvs.Service) error
	UpdateService(*ipvs.Service) error
	DelService(*ipvs.Service) error
	GetDestinations(*ipvs.Service) ([]*ipvs.Destination, error)
	NewDestination(*ipvs.Service, *ipvs.Destination) error
	UpdateDestination(*ipvs.Service, *ipvs.Destination) error
	DelDestination(*ipvs.Service, *ipvs.Destination) error
	// Flush deletes every virtual server.
	Flush() error
	// SetConfig sets the connection timeouts; a zero one is left as is.
	SetConfig(*ipvs.Config) error
	Close()
}

var _ Interface = &ipvs.Handle{}

// batchWriter is an Interface that can also send many writes at once.
type batchWriter interface {
	// applyBatch performs ops in order, as the same calls one by one
	// would, and returns each op's outcome.
	applyBatch(ops []ipvsOp) []error
}

// Handle is moby/ipvs's handle plus a batched writer for full syncs:
// each moby/ipvs call is one netlink request and one wait for its answer.
type Handle struct {
	*ipvs.Handle
	ns string

	once   sync.Once
	batch  *batchSocket
	family uint16
	err    error
}

var (
	_ Interface   = &Handle{}
	_ batchWriter = &Handle{}
	_ destReader  = &Handle{}
)

// NewHandle opens an IPVS netlink handle in network namespace ns ("" =
// the current one). The caller must have checked that the kernel has
// IPVS (Preflight): without it moby/ipvs returns a handle whose every
// call fails or, worse, silently does nothing.
func NewHandle(ns string) (*Handle, error) {
	path := ""
	if ns != "" {
		path = "/run/netns/" + ns
	}
	h, err := ipvs.New(path)
	if err != nil {
		return nil, fmt.Errorf("IPVS netlink handle in namespace %q: %w", ns, err)
	}
	return &Handle{Handle: h, ns: ns}, nil
}

// Close closes both sockets.
func (h *Handle) Close() {
	h.Handle.Close()
	h.batch.close()
}

func (h *Handle) batchSocket() (*batchSocket, uint16, error) {
	h.once.Do(func() {
		h.family, h.err = ipvsFamily()
		if h.err == nil {
			h.batch, h.err = openBatchSocket(h.ns, unix.NETLINK_GENERIC)
		}
	})
	return h.batch, h.family, h.err
}

func (h *Handle) applyBatch(ops []ipvsOp) []error {
	errs := make([]error, len(ops))
	sock, family, err := h.batchSocket()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	reqs := make([][]byte, len(ops))
	for i, op := range ops {
		reqs[i] = op.encode(family)
	}
	return sock.exec(reqs)
}

// readAllDests reads the real servers of every virtual server of the
// handle's namespace from /proc/net/ip_vs, in one pass.
func (h *Handle) readAllDests() (*destTable, error) {
	return readProcIPVS(h.ns)
}
