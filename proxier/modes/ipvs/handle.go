package ipvs

import (
	"fmt"

	"github.com/moby/ipvs"
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

// NewHandle opens an IPVS netlink handle in network namespace ns ("" =
// the current one). The caller must have checked that the kernel has
// IPVS (Preflight): without it moby/ipvs returns a handle whose every
// call fails or, worse, silently does nothing.
func NewHandle(ns string) (Interface, error) {
	path := ""
	if ns != "" {
		path = "/run/netns/" + ns
	}
	h, err := ipvs.New(path)
	if err != nil {
		return nil, fmt.Errorf("IPVS netlink handle in namespace %q: %w", ns, err)
	}
	return h, nil
}
