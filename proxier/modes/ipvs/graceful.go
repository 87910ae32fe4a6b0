package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/moby/ipvs"
	"k8s.io/klog/v2"
)

// graceful is upstream's graceful termination manager, simplified: a
// removed TCP real server gets weight 0 (no new connections) and is
// deleted once its active and inactive connections are gone, or after
// timeout. UDP and SCTP ones are deleted at once: with
// expire_nodest_conn=1 their flows move on at the next packet.
type graceful struct {
	timeout time.Duration
	now     func() time.Time
	// pending maps a draining real server to when it started draining.
	pending map[gracefulKey]time.Time
}

type gracefulKey struct {
	vs   vsKey
	dest netip.AddrPort
}

func newGraceful(timeout time.Duration, now func() time.Time) *graceful {
	return &graceful{timeout: timeout, now: now, pending: map[gracefulKey]time.Time{}}
}

func (g *graceful) isPending(k vsKey, d netip.AddrPort) bool {
	_, ok := g.pending[gracefulKey{k, d}]
	return ok
}

// cancel forgets a draining real server that is wanted again; the caller
// restores its weight.
func (g *graceful) cancel(k vsKey, d netip.AddrPort) {
	delete(g.pending, gracefulKey{k, d})
}

// forgetService drops the real servers of a deleted virtual server.
func (g *graceful) forgetService(k vsKey) {
	for gk := range g.pending {
		if gk.vs == k {
			delete(g.pending, gk)
		}
	}
}

func needsDrain(proto uint16) bool { return proto == 6 } // TCP

func ipvsService(k vsKey) *ipvs.Service {
	mask := uint32(0xffffffff)
	if k.addr.Is6() {
		mask = 128
	}
	return &ipvs.Service{Address: net.IP(k.addr.AsSlice()), Port: k.port, Protocol: k.proto, AddressFamily: familyOf(k.addr), Netmask: mask}
}

func ipvsDest(d netip.AddrPort, weight int) *ipvs.Destination {
	return &ipvs.Destination{Address: net.IP(d.Addr().AsSlice()), Port: d.Port(), Weight: weight, AddressFamily: familyOf(d.Addr())}
}

// remove starts the graceful removal of dests from virtual server k, with
// one read of its real servers.
func (g *graceful) remove(h Interface, k vsKey, dests []netip.AddrPort) error {
	if len(dests) == 0 {
		return nil
	}
	svc := ipvsService(k)
	var current map[netip.AddrPort]*ipvs.Destination
	if needsDrain(k.proto) {
		list, err := h.GetDestinations(svc)
		if err != nil {
			return fmt.Errorf("virtual server %s: list real servers: %w", k, err)
		}
		current = make(map[netip.AddrPort]*ipvs.Destination, len(list))
		for _, d := range list {
			current[destKey(d)] = d
		}
	}
	var errs []error
	for _, d := range dests {
		if needsDrain(k.proto) {
			cur, ok := current[d]
			if !ok {
				continue // already gone
			}
			if cur.ActiveConnections+cur.InactiveConnections > 0 {
				if err := h.UpdateDestination(svc, ipvsDest(d, 0)); err != nil {
					errs = append(errs, fmt.Errorf("virtual server %s: quiesce real server %s: %w", k, d, err))
					continue
				}
				g.pending[gracefulKey{k, d}] = g.now()
				klog.V(3).InfoS("Real server draining", "virtualServer", k, "realServer", d,
					"activeConnections", cur.ActiveConnections, "inactiveConnections", cur.InactiveConnections)
				continue
			}
		}
		if err := h.DelDestination(svc, ipvsDest(d, 0)); err != nil {
			errs = append(errs, fmt.Errorf("virtual server %s: delete real server %s: %w", k, d, err))
		}
	}
	return errors.Join(errs...)
}

// process deletes the draining real servers whose connections are gone
// or whose time is up. Called on every sync, as upstream's manager runs
// periodically.
func (g *graceful) process(h Interface) error {
	if len(g.pending) == 0 {
		return nil
	}
	byVS := map[vsKey][]netip.AddrPort{}
	for gk := range g.pending {
		byVS[gk.vs] = append(byVS[gk.vs], gk.dest)
	}
	now := g.now()
	var errs []error
	for k, dests := range byVS {
		svc := ipvsService(k)
		list, err := h.GetDestinations(svc)
		if err != nil {
			// The virtual server is gone with its real servers.
			for _, d := range dests {
				delete(g.pending, gracefulKey{k, d})
			}
			continue
		}
		current := make(map[netip.AddrPort]*ipvs.Destination, len(list))
		for _, d := range list {
			current[destKey(d)] = d
		}
		for _, d := range dests {
			gk := gracefulKey{k, d}
			cur, ok := current[d]
			if !ok {
				delete(g.pending, gk)
				continue
			}
			expired := now.Sub(g.pending[gk]) >= g.timeout
			if cur.ActiveConnections+cur.InactiveConnections > 0 && !expired {
				continue
			}
			if err := h.DelDestination(svc, ipvsDest(d, 0)); err != nil {
				errs = append(errs, fmt.Errorf("virtual server %s: delete drained real server %s: %w", k, d, err))
				continue
			}
			klog.V(3).InfoS("Real server drained and deleted", "virtualServer", k, "realServer", d, "timedOut", expired)
			delete(g.pending, gk)
		}
	}
	return errors.Join(errs...)
}
