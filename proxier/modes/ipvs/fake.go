package ipvs

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/moby/ipvs"
)

// Fake is an in-memory IPVS table for unit tests. It counts calls by
// method so tests can check that a sync touched only what changed, and
// lets tests set connection counts of real servers.
type Fake struct {
	mu       sync.Mutex
	services map[fakeKey]*fakeService
	// Calls counts calls by method name ("NewService", ...).
	Calls  map[string]int
	Config ipvs.Config
	// Schedulers, when set, are the only schedulers NewService accepts.
	Schedulers []string
	// ReadAllErr, when set, fails the one-pass read of every real
	// server, as an unreadable /proc/net/ip_vs would.
	ReadAllErr error
}

var (
	_ Interface  = &Fake{}
	_ destReader = &Fake{}
)

type fakeKey struct {
	addr  netip.Addr
	port  uint16
	proto uint16
}

type fakeService struct {
	svc   ipvs.Service
	dests map[netip.AddrPort]*ipvs.Destination
	order []netip.AddrPort
}

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{services: map[fakeKey]*fakeService{}, Calls: map[string]int{}}
}

func keyOf(s *ipvs.Service) fakeKey {
	a, _ := netip.AddrFromSlice(s.Address)
	return fakeKey{a.Unmap(), s.Port, s.Protocol}
}

func destKey(d *ipvs.Destination) netip.AddrPort {
	a, _ := netip.AddrFromSlice(d.Address)
	return netip.AddrPortFrom(a.Unmap(), d.Port)
}

func (f *Fake) call(name string) {
	f.Calls[name]++
}

// ResetCalls zeroes the call counters.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = map[string]int{}
}

// Writes counts the calls that change the table.
func (f *Fake) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range []string{"NewService", "UpdateService", "DelService", "NewDestination", "UpdateDestination", "DelDestination", "Flush"} {
		n += f.Calls[m]
	}
	return n
}

func cloneService(s *ipvs.Service) *ipvs.Service {
	c := *s
	c.Address = slices.Clone(s.Address)
	return &c
}

func (f *Fake) GetServices() ([]*ipvs.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("GetServices")
	out := make([]*ipvs.Service, 0, len(f.services))
	for _, s := range f.services {
		c := cloneService(&s.svc)
		// The kernel reports every service as hashed.
		c.Flags |= flagHashed
		out = append(out, c)
	}
	return out, nil
}

func (f *Fake) NewService(s *ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("NewService")
	k := keyOf(s)
	if _, ok := f.services[k]; ok {
		return fmt.Errorf("fake ipvs: service %v exists", k)
	}
	if f.Schedulers != nil && !slices.Contains(f.Schedulers, s.SchedName) {
		return fmt.Errorf("fake ipvs: no such file or directory (scheduler %q)", s.SchedName)
	}
	f.services[k] = &fakeService{svc: *cloneService(s), dests: map[netip.AddrPort]*ipvs.Destination{}}
	return nil
}

func (f *Fake) UpdateService(s *ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("UpdateService")
	fs, ok := f.services[keyOf(s)]
	if !ok {
		return fmt.Errorf("fake ipvs: no service %v", keyOf(s))
	}
	fs.svc = *cloneService(s)
	return nil
}

func (f *Fake) DelService(s *ipvs.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DelService")
	if _, ok := f.services[keyOf(s)]; !ok {
		return fmt.Errorf("fake ipvs: no service %v", keyOf(s))
	}
	delete(f.services, keyOf(s))
	return nil
}

func (f *Fake) GetDestinations(s *ipvs.Service) ([]*ipvs.Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("GetDestinations")
	fs, ok := f.services[keyOf(s)]
	if !ok {
		return nil, fmt.Errorf("fake ipvs: no service %v", keyOf(s))
	}
	out := make([]*ipvs.Destination, 0, len(fs.dests))
	for _, k := range fs.order {
		d := *fs.dests[k]
		d.Address = slices.Clone(d.Address)
		out = append(out, &d)
	}
	return out, nil
}

// readAllDests is GetDestinations for every virtual server at once;
// Calls counts it as "ReadAllDestinations".
func (f *Fake) readAllDests() (*destTable, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("ReadAllDestinations")
	if f.ReadAllErr != nil {
		return nil, f.ReadAllErr
	}
	t := newDestTable()
	for k, fs := range f.services {
		ps := &procService{key: vsKey{k.addr, k.port, k.proto}, sched: fs.svc.SchedName, persistent: fs.svc.Flags&flagPersistent != 0}
		for _, dk := range fs.order {
			d := *fs.dests[dk]
			d.Address = slices.Clone(d.Address)
			ps.dests = append(ps.dests, &d)
		}
		t.services[ps.key] = ps
	}
	return t, nil
}

func (f *Fake) NewDestination(s *ipvs.Service, d *ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("NewDestination")
	fs, ok := f.services[keyOf(s)]
	if !ok {
		return fmt.Errorf("fake ipvs: no service %v", keyOf(s))
	}
	k := destKey(d)
	if _, ok := fs.dests[k]; ok {
		return fmt.Errorf("fake ipvs: destination %v exists", k)
	}
	c := *d
	fs.dests[k] = &c
	fs.order = append(fs.order, k)
	return nil
}

func (f *Fake) UpdateDestination(s *ipvs.Service, d *ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("UpdateDestination")
	fs, ok := f.services[keyOf(s)]
	if !ok {
		return fmt.Errorf("fake ipvs: no service %v", keyOf(s))
	}
	old, ok := fs.dests[destKey(d)]
	if !ok {
		return fmt.Errorf("fake ipvs: no destination %v", destKey(d))
	}
	old.Weight = d.Weight
	return nil
}

func (f *Fake) DelDestination(s *ipvs.Service, d *ipvs.Destination) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("DelDestination")
	fs, ok := f.services[keyOf(s)]
	if !ok {
		return fmt.Errorf("fake ipvs: no service %v", keyOf(s))
	}
	k := destKey(d)
	if _, ok := fs.dests[k]; !ok {
		return fmt.Errorf("fake ipvs: no destination %v", k)
	}
	delete(fs.dests, k)
	fs.order = slices.DeleteFunc(fs.order, func(x netip.AddrPort) bool { return x == k })
	return nil
}

func (f *Fake) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("Flush")
	f.services = map[fakeKey]*fakeService{}
	return nil
}

func (f *Fake) SetConfig(c *ipvs.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call("SetConfig")
	f.Config = *c
	return nil
}

func (f *Fake) Close() {}

// SetConnections sets the active and inactive connection counts of a real
// server, as traffic would.
func (f *Fake) SetConnections(vip netip.AddrPort, proto uint16, dest netip.AddrPort, active, inactive int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, ok := f.services[fakeKey{vip.Addr(), vip.Port(), proto}]
	if !ok {
		return fmt.Errorf("fake ipvs: no service %v", vip)
	}
	d, ok := fs.dests[dest]
	if !ok {
		return fmt.Errorf("fake ipvs: no destination %v", dest)
	}
	d.ActiveConnections, d.InactiveConnections = active, inactive
	return nil
}

// Dump is the table as "proto vip:port sched flags timeout -> dest:port/weight ..."
// lines, sorted, for comparisons in tests.
func (f *Fake) Dump() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, s := range f.services {
		line := fmt.Sprintf("%s %s %s flags=%#x timeout=%d ->", protoName(k.proto), netip.AddrPortFrom(k.addr, k.port), s.svc.SchedName, s.svc.Flags, s.svc.Timeout)
		var ds []string
		for _, dk := range s.order {
			ds = append(ds, fmt.Sprintf("%s/%d", dk, s.dests[dk].Weight))
		}
		slices.Sort(ds)
		for _, d := range ds {
			line += " " + d
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// AddForeign adds a service as someone else (or an old run) would.
func (f *Fake) AddForeign(proto uint16, vip netip.AddrPort, sched string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := vip.Addr().AsSlice()
	f.services[fakeKey{vip.Addr(), vip.Port(), proto}] = &fakeService{
		svc:   ipvs.Service{Address: net.IP(a), Port: vip.Port(), Protocol: proto, SchedName: sched, AddressFamily: familyOf(vip.Addr())},
		dests: map[netip.AddrPort]*ipvs.Destination{},
	}
}
