package ipvs

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/moby/ipvs"
	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
)

// writeCounter counts the IPVS writes through a real handle, batched or
// not, keeping the handle's one-pass reader and batched writer.
type writeCounter struct {
	*Handle
	writes atomic.Int32
}

func (c *writeCounter) NewService(s *ipvs.Service) error {
	c.writes.Add(1)
	return c.Handle.NewService(s)
}

func (c *writeCounter) UpdateService(s *ipvs.Service) error {
	c.writes.Add(1)
	return c.Handle.UpdateService(s)
}

func (c *writeCounter) DelService(s *ipvs.Service) error {
	c.writes.Add(1)
	return c.Handle.DelService(s)
}

func (c *writeCounter) NewDestination(s *ipvs.Service, d *ipvs.Destination) error {
	c.writes.Add(1)
	return c.Handle.NewDestination(s, d)
}

func (c *writeCounter) UpdateDestination(s *ipvs.Service, d *ipvs.Destination) error {
	c.writes.Add(1)
	return c.Handle.UpdateDestination(s, d)
}

func (c *writeCounter) DelDestination(s *ipvs.Service, d *ipvs.Destination) error {
	c.writes.Add(1)
	return c.Handle.DelDestination(s, d)
}

func (c *writeCounter) Flush() error {
	c.writes.Add(1)
	return c.Handle.Flush()
}

func (c *writeCounter) applyBatch(ops []ipvsOp) []error {
	c.writes.Add(int32(len(ops)))
	return c.Handle.applyBatch(ops)
}

// The kernel's side of TestARestartedProxiersFirstSyncLeavesAMatchingKernelUntouched:
// what the kernel reports back (flags, weights, /proc/net/ip_vs) must read
// as "matches", or a restart rewrites it under traffic. A real server
// deleted and added again starts its connection counter from 0, so the
// counters show it too.
func TestKernelARestartedProxierWritesNothingWhereTheKernelMatches(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	tp := newKernelTopo(t, 2)
	tp.serve(t)
	ctx := context.Background()
	v := view(kernelService("web", "10.96.0.120", v1.ProtocolTCP, 0, 1),
		kernelService("dns", "10.96.0.121", v1.ProtocolUDP, 0, 1))
	sticky := kernelService("sticky", "10.96.0.122", v1.ProtocolTCP, 0, 1)
	sticky.SessionAffinity, sticky.StickySeconds = true, 600
	v.Services[sticky.Name] = sticky
	before, err := New(ctx, Options{NetNS: tp.node})
	if err != nil {
		t.Fatalf("New in the VM: %v", err)
	}
	t.Cleanup(func() { _ = before.Cleanup(ctx) })
	mustSync(t, before, v, full())
	vip := netip.MustParseAddrPort("10.96.0.120:80")
	for range 4 {
		if _, err := tp.askTCP("192.168.77.2", vip); err != nil {
			t.Fatalf("through %s before the restart: %v", vip, err)
		}
	}
	conns := destConnections(t, tp.node)

	h, err := NewHandle(tp.node)
	if err != nil {
		t.Fatal(err)
	}
	counted := &writeCounter{Handle: h}
	after, err := New(ctx, Options{NetNS: tp.node, IPVS: counted})
	if err != nil {
		t.Fatalf("New after the restart: %v", err)
	}
	mustSync(t, after, v, full())
	if n := counted.writes.Load(); n != 0 {
		t.Errorf("the restarted proxier's first sync made %d IPVS writes, want none: the kernel matched", n)
	}
	for d, n := range destConnections(t, tp.node) {
		if n < conns[d] {
			t.Errorf("real server %s: %d connections counted after the restart, %d before: it was deleted and added again", d, n, conns[d])
		}
	}
	if _, err := tp.askTCP("192.168.77.2", vip); err != nil {
		t.Errorf("through %s after the restart: %v", vip, err)
	}
}

// destConnections is every real server's connection counter, by virtual
// and real server.
func destConnections(t *testing.T, ns string) map[string]uint32 {
	t.Helper()
	h, err := NewHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, s := range svcs {
		ds, err := h.GetDestinations(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			out[s.Address.String()+" "+d.Address.String()] = d.Stats.Connections
		}
	}
	return out
}
