package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/ipvs"

	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
)

// opStats counts and times the kernel calls of a sync by kind, to show
// where a full sync's time goes (BenchmarkSync logs it).
type opStats struct {
	mu sync.Mutex
	m  map[string]*opStat
}

type opStat struct {
	n int
	d time.Duration
}

func newOpStats() *opStats { return &opStats{m: map[string]*opStat{}} }

func (s *opStats) since(name string, start time.Time) {
	s.add(name, 1, time.Since(start))
}

func (s *opStats) add(name string, n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[name]
	if st == nil {
		st = &opStat{}
		s.m[name] = st
	}
	st.n += n
	st.d += d
}

func (s *opStats) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = map[string]*opStat{}
}

// report lists the kinds by time spent, and what the calls leave of total
// (the proxier's own Go work).
func (s *opStats) report(total time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.m))
	var sum time.Duration
	for n, st := range s.m {
		names = append(names, n)
		sum += st.d
	}
	slices.SortFunc(names, func(a, b string) int { return int(s.m[b].d - s.m[a].d) })
	var b strings.Builder
	for _, n := range names {
		st := s.m[n]
		fmt.Fprintf(&b, "  %-24s %7d calls %10.1f ms %8.1f us/call\n", n, st.n, float64(st.d)/1e6, float64(st.d)/1e3/float64(st.n))
	}
	fmt.Fprintf(&b, "  %-24s %19s %10.1f ms\n", "(outside kernel calls)", "", float64(total-sum)/1e6)
	return b.String()
}

// timedIPVS times every IPVS call.
type timedIPVS struct {
	in Interface
	st *opStats
}

func (t timedIPVS) GetServices() ([]*ipvs.Service, error) {
	defer t.st.since("ipvs GetServices", time.Now())
	return t.in.GetServices()
}
func (t timedIPVS) NewService(s *ipvs.Service) error {
	defer t.st.since("ipvs NewService", time.Now())
	return t.in.NewService(s)
}
func (t timedIPVS) UpdateService(s *ipvs.Service) error {
	defer t.st.since("ipvs UpdateService", time.Now())
	return t.in.UpdateService(s)
}
func (t timedIPVS) DelService(s *ipvs.Service) error {
	defer t.st.since("ipvs DelService", time.Now())
	return t.in.DelService(s)
}
func (t timedIPVS) GetDestinations(s *ipvs.Service) ([]*ipvs.Destination, error) {
	defer t.st.since("ipvs GetDestinations", time.Now())
	return t.in.GetDestinations(s)
}
func (t timedIPVS) NewDestination(s *ipvs.Service, d *ipvs.Destination) error {
	defer t.st.since("ipvs NewDestination", time.Now())
	return t.in.NewDestination(s, d)
}
func (t timedIPVS) UpdateDestination(s *ipvs.Service, d *ipvs.Destination) error {
	defer t.st.since("ipvs UpdateDestination", time.Now())
	return t.in.UpdateDestination(s, d)
}
func (t timedIPVS) DelDestination(s *ipvs.Service, d *ipvs.Destination) error {
	defer t.st.since("ipvs DelDestination", time.Now())
	return t.in.DelDestination(s, d)
}
func (t timedIPVS) Flush() error {
	defer t.st.since("ipvs Flush", time.Now())
	return t.in.Flush()
}
func (t timedIPVS) SetConfig(c *ipvs.Config) error { return t.in.SetConfig(c) }
func (t timedIPVS) Close()                         { t.in.Close() }

// timedLinks times the address calls.
type timedLinks struct {
	in Links
	st *opStats
}

func (t timedLinks) EnsureDummy(name string) error {
	defer t.st.since("link EnsureDummy", time.Now())
	return t.in.EnsureDummy(name)
}
func (t timedLinks) DeleteDummy(name string) error { return t.in.DeleteDummy(name) }
func (t timedLinks) Addrs(name string) ([]netip.Addr, error) {
	defer t.st.since("addr list", time.Now())
	return t.in.Addrs(name)
}
func (t timedLinks) AddAddr(name string, a netip.Addr) error {
	defer t.st.since("addr add", time.Now())
	return t.in.AddAddr(name, a)
}
func (t timedLinks) DelAddr(name string, a netip.Addr) error {
	defer t.st.since("addr del", time.Now())
	return t.in.DelAddr(name, a)
}
func (t timedLinks) NodeAddresses(except string) ([]netip.Addr, error) {
	defer t.st.since("node addresses", time.Now())
	return t.in.NodeAddresses(except)
}

// timedIPSet times the ipset calls.
type timedIPSet struct {
	in IPSetter
	st *opStats
}

func (t timedIPSet) Create(set, typ string, family uint8) error {
	defer t.st.since("ipset create", time.Now())
	return t.in.Create(set, typ, family)
}
func (t timedIPSet) Destroy(set string) error { return t.in.Destroy(set) }
func (t timedIPSet) Add(set string, e Entry) error {
	defer t.st.since("ipset add", time.Now())
	return t.in.Add(set, e)
}
func (t timedIPSet) Del(set string, e Entry) error {
	defer t.st.since("ipset del", time.Now())
	return t.in.Del(set, e)
}
func (t timedIPSet) List(set string) ([]Entry, error) {
	defer t.st.since("ipset list", time.Now())
	return t.in.List(set)
}

// timedRunner times the iptables calls.
type timedRunner struct {
	iptables.Runner
	st *opStats
}

func (t timedRunner) Restore(ctx context.Context, input []byte, flags iptables.RestoreFlags) error {
	defer t.st.since("iptables-restore", time.Now())
	return t.Runner.Restore(ctx, input, flags)
}
func (t timedRunner) EnsureChain(ctx context.Context, table, chain string) error {
	defer t.st.since("iptables ensure chain", time.Now())
	return t.Runner.EnsureChain(ctx, table, chain)
}
func (t timedRunner) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	defer t.st.since("iptables ensure rule", time.Now())
	return t.Runner.EnsureRule(ctx, table, chain, rule...)
}

// timeIPVS wraps h to time its calls, keeping its batched writer and
// one-pass reader (the Handle has both).
func timeIPVS(h Interface, st *opStats) Interface {
	bw, batches := h.(batchWriter)
	dr, reads := h.(destReader)
	switch {
	case batches && reads:
		return timedHandleIPVS{timedBatchIPVS{timedIPVS{h, st}, bw}, dr}
	case batches:
		return timedBatchIPVS{timedIPVS{h, st}, bw}
	}
	return timedIPVS{h, st}
}

type timedHandleIPVS struct {
	timedBatchIPVS
	dr destReader
}

func (t timedHandleIPVS) readAllDests() (*destTable, error) {
	defer t.st.since("ipvs read all real servers", time.Now())
	return t.dr.readAllDests()
}

type timedBatchIPVS struct {
	timedIPVS
	bw batchWriter
}

func (t timedBatchIPVS) applyBatch(ops []ipvsOp) []error {
	start := time.Now()
	errs := t.bw.applyBatch(ops)
	t.st.add("ipvs batch (ops)", len(ops), time.Since(start))
	return errs
}

// timeLinks wraps l to time its calls, keeping its batched address adds.
func timeLinks(l Links, st *opStats) Links {
	if b, ok := l.(addrBatcher); ok {
		return timedBatchLinks{timedLinks{l, st}, b}
	}
	return timedLinks{l, st}
}

type timedBatchLinks struct {
	timedLinks
	b addrBatcher
}

func (t timedBatchLinks) addAddrs(name string, addrs []netip.Addr) []error {
	start := time.Now()
	errs := t.b.addAddrs(name, addrs)
	t.st.add("addr batch (addrs)", len(addrs), time.Since(start))
	return errs
}

// timeIPSet wraps s to time its calls, keeping its batched adds.
func timeIPSet(s IPSetter, st *opStats) IPSetter {
	if b, ok := s.(entryBatcher); ok {
		return timedBatchIPSet{timedIPSet{s, st}, b}
	}
	return timedIPSet{s, st}
}

type timedBatchIPSet struct {
	timedIPSet
	b entryBatcher
}

func (t timedBatchIPSet) addEntries(set string, es []Entry) []error {
	start := time.Now()
	errs := t.b.addEntries(set, es)
	t.st.add("ipset batch (entries)", len(es), time.Since(start))
	return errs
}
