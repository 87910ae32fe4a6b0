package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
)

// FakeIPSet keeps ipsets in memory and counts calls by method.
type FakeIPSet struct {
	mu    sync.Mutex
	Sets  map[string]map[Entry]bool
	Types map[string]string
	Calls map[string]int
}

var _ IPSetter = &FakeIPSet{}

// NewFakeIPSet returns an empty FakeIPSet.
func NewFakeIPSet() *FakeIPSet {
	return &FakeIPSet{Sets: map[string]map[Entry]bool{}, Types: map[string]string{}, Calls: map[string]int{}}
}

func (f *FakeIPSet) Create(set, typ string, _ uint8) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Create"]++
	if _, ok := f.Sets[set]; !ok {
		f.Sets[set], f.Types[set] = map[Entry]bool{}, typ
	}
	return nil
}

func (f *FakeIPSet) Destroy(set string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Destroy"]++
	delete(f.Sets, set)
	delete(f.Types, set)
	return nil
}

func (f *FakeIPSet) Add(set string, e Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Add"]++
	s, ok := f.Sets[set]
	if !ok {
		return fmt.Errorf("fake ipset: no set %s", set)
	}
	s[e] = true
	return nil
}

func (f *FakeIPSet) Del(set string, e Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Del"]++
	s, ok := f.Sets[set]
	if !ok {
		return fmt.Errorf("fake ipset: no set %s", set)
	}
	delete(s, e)
	return nil
}

func (f *FakeIPSet) List(set string) ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["List"]++
	s, ok := f.Sets[set]
	if !ok {
		return nil, fmt.Errorf("fake ipset: no set %s", set)
	}
	out := make([]Entry, 0, len(s))
	for e := range s {
		out = append(out, e)
	}
	return out, nil
}

// Members lists a set's entries as strings, sorted.
func (f *FakeIPSet) Members(set string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for e := range f.Sets[set] {
		out = append(out, e.String())
	}
	slices.Sort(out)
	return out
}

// FakeLinks is an in-memory Links: NodeIPs are the node's addresses, Dummy
// the dummy interfaces and their addresses.
type FakeLinks struct {
	mu      sync.Mutex
	NodeIPs []netip.Addr
	Dummy   map[string]map[netip.Addr]bool
	Calls   map[string]int
}

var _ Links = &FakeLinks{}

// NewFakeLinks returns FakeLinks with node addresses ips.
func NewFakeLinks(ips ...netip.Addr) *FakeLinks {
	return &FakeLinks{NodeIPs: ips, Dummy: map[string]map[netip.Addr]bool{}, Calls: map[string]int{}}
}

func (f *FakeLinks) EnsureDummy(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["EnsureDummy"]++
	if f.Dummy[name] == nil {
		f.Dummy[name] = map[netip.Addr]bool{}
	}
	return nil
}

func (f *FakeLinks) DeleteDummy(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["DeleteDummy"]++
	delete(f.Dummy, name)
	return nil
}

func (f *FakeLinks) Addrs(name string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Addrs"]++
	var out []netip.Addr
	for a := range f.Dummy[name] {
		out = append(out, a)
	}
	return out, nil
}

func (f *FakeLinks) AddAddr(name string, a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["AddAddr"]++
	if f.Dummy[name] == nil {
		return fmt.Errorf("fake links: no interface %s", name)
	}
	f.Dummy[name][a] = true
	return nil
}

func (f *FakeLinks) DelAddr(name string, a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["DelAddr"]++
	delete(f.Dummy[name], a)
	return nil
}

func (f *FakeLinks) NodeAddresses(string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["NodeAddresses"]++
	return slices.Clone(f.NodeIPs), nil
}

// Bound lists the addresses on the dummy interface, sorted.
func (f *FakeLinks) Bound() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a := range f.Dummy[dummyDevice] {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}
