package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/ipvs"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
)

// kernelNS makes an empty namespace with loopback up (IPVS refuses real
// servers in a namespace without a local routing table) and an IPVS
// handle in it.
func kernelNS(t *testing.T, name string) (string, *Handle) {
	t.Helper()
	ns := fmt.Sprintf("ipvs%d-%s", os.Getpid(), name)
	_ = ipCmd("netns", "del", ns)
	if err := ipCmd("netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ipCmd("netns", "del", ns) })
	if err := ipCmd("-n", ns, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	h, err := NewHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return ns, h
}

// dumpTable lists the IPVS table through moby/ipvs, every attribute the
// writes set, sorted.
func dumpTable(t *testing.T, h Interface) []string {
	t.Helper()
	svcs, err := h.GetServices()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range svcs {
		line := fmt.Sprintf("af=%d proto=%d %s:%d sched=%s flags=%#x timeout=%d netmask=%#x ->",
			s.AddressFamily, s.Protocol, s.Address, s.Port, s.SchedName, s.Flags, s.Timeout, s.Netmask)
		dests, err := h.GetDestinations(s)
		if err != nil {
			t.Fatal(err)
		}
		var ds []string
		for _, d := range dests {
			ds = append(ds, fmt.Sprintf("%s:%d/w%d/fwd%#x/u%d/l%d", d.Address, d.Port, d.Weight, d.ConnectionFlags, d.UpperThreshold, d.LowerThreshold))
		}
		slices.Sort(ds)
		out = append(out, line+" "+strings.Join(ds, " "))
	}
	slices.Sort(out)
	return out
}

func vsOf(addr string, port, proto uint16, sched string, flags, timeout uint32) *ipvs.Service {
	s := ipvsService(vsKey{netip.MustParseAddr(addr), port, proto})
	s.SchedName, s.Flags, s.Timeout = sched, flags, timeout
	return s
}

func destOf(addr string, port uint16, weight int) *ipvs.Destination {
	return ipvsDest(netip.AddrPortFrom(netip.MustParseAddr(addr), port), weight)
}

// sampleOps creates, updates and deletes virtual and real servers of
// every kind the mode writes, with more real servers than one sendmsg
// holds.
func sampleOps() []ipvsOp {
	a := vsOf("10.96.0.1", 80, 6, "rr", 0, 0)
	b := vsOf("10.96.0.2", 53, 17, "wrr", flagPersistent, 10800)
	c := vsOf("10.96.0.3", 443, 6, "sh", 0, 0)
	gone := vsOf("10.96.0.4", 80, 6, "rr", 0, 0)
	ops := []ipvsOp{
		{kind: opNewService, svc: a}, {kind: opNewService, svc: b}, {kind: opNewService, svc: c}, {kind: opNewService, svc: gone},
		{kind: opNewDest, svc: gone, dest: destOf("10.244.0.9", 80, 1)},
	}
	for i := range 2000 {
		ops = append(ops, ipvsOp{kind: opNewDest, svc: a, dest: destOf(fmt.Sprintf("10.244.%d.%d", i/250, i%250+1), 8080, 1+i%3)})
	}
	ops = append(ops,
		ipvsOp{kind: opNewDest, svc: b, dest: destOf("10.244.9.1", 53, 1)},
		ipvsOp{kind: opNewDest, svc: b, dest: destOf("10.244.9.2", 53, 5)},
		ipvsOp{kind: opNewDest, svc: c, dest: destOf("10.244.9.3", 8443, 1)},
		ipvsOp{kind: opUpdateService, svc: vsOf("10.96.0.3", 443, 6, "lc", flagPersistent, 60)},
		ipvsOp{kind: opUpdateDest, svc: b, dest: destOf("10.244.9.1", 53, 0)},
		ipvsOp{kind: opDelDest, svc: a, dest: destOf("10.244.0.1", 8080, 0)},
		ipvsOp{kind: opDelService, svc: gone},
	)
	return ops
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

func TestKernelBatchedWriterProgramsWhatOneCallEachDoes(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	_, single := kernelNS(t, "one")
	_, batch := kernelNS(t, "batch")

	t.Run("the same writes leave the same table", func(t *testing.T) {
		ops := sampleOps()
		for i, op := range ops {
			if err := op.do(single); err != nil {
				t.Fatalf("op %d one by one: %v", i, err)
			}
		}
		for i, err := range batch.applyBatch(ops) {
			if err != nil {
				t.Fatalf("op %d in the batch: %v", i, err)
			}
		}
		want, got := dumpTable(t, single), dumpTable(t, batch)
		if all := strings.Join(want, "\n"); len(want) != 3 || !strings.Contains(all, "10.244.7.250:8080/w") || strings.Contains(all, "10.244.0.1:8080/") {
			t.Fatalf("one by one left an unexpected table: %.300q", want)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("batched table differs (-one by one +batched):\n%.3000s", diff)
		}
	})

	t.Run("each failing message gets its own error and the others apply", func(t *testing.T) {
		missing := vsOf("10.96.9.9", 80, 6, "rr", 0, 0)
		a := vsOf("10.96.1.1", 80, 6, "rr", 0, 0)
		ops := []ipvsOp{{kind: opNewService, svc: a}}
		for i := range 1500 {
			ops = append(ops, ipvsOp{kind: opNewDest, svc: a, dest: destOf("10.245.0.1", uint16(1000+i), 1)})
		}
		// In the second sendmsg: a real server of a virtual server that
		// does not exist, a virtual server that exists already, and a
		// real server that exists already.
		ops[1200] = ipvsOp{kind: opNewDest, svc: missing, dest: destOf("10.245.0.2", 80, 1)}
		ops[1201] = ipvsOp{kind: opNewService, svc: a}
		ops = append(ops, ops[5])
		bad := map[int]bool{1200: true, 1201: true, len(ops) - 1: true}

		var wantErr []syscall.Errno
		for _, op := range ops {
			wantErr = append(wantErr, errnoOf(op.do(single)))
		}
		errs := batch.applyBatch(ops)
		for i, err := range errs {
			if got := errnoOf(err); got != wantErr[i] || (err != nil) != bad[i] {
				t.Errorf("op %d (%d %s): batched error %v, one by one %v; want an error only for ops 1200, 1201 and the last", i, ops[i].kind, ops[i].dest.Address, err, wantErr[i])
			}
		}
		if diff := cmp.Diff(dumpTable(t, single), dumpTable(t, batch)); diff != "" {
			t.Errorf("after failures the tables differ (-one by one +batched):\n%.3000s", diff)
		}
	})

	t.Run("a full sync names the virtual server it could not create and creates the rest", func(t *testing.T) {
		ns, h := kernelNS(t, "sync")
		p, err := New(t.Context(), Options{NetNS: ns, IPVS: h})
		if err != nil {
			t.Fatal(err)
		}
		bad := vsKey{netip.MustParseAddr("10.96.2.1"), 80, 6}
		good := vsKey{netip.MustParseAddr("10.96.2.2"), 80, 6}
		dests := map[netip.AddrPort]int{netip.MustParseAddrPort("10.246.0.1:80"): 1, netip.MustParseAddrPort("10.246.0.2:80"): 2}
		var errs []error
		q := newWriteQueue(h, true)
		if !q.batching() {
			t.Fatal("the real handle does not batch")
		}
		p.createServer(h, q, bad, &vServer{sched: "nosuch", dests: dests}, &errs)
		p.createServer(h, q, good, &vServer{sched: "rr", dests: dests}, &errs)
		q.flush()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "virtual server tcp/10.96.2.1:80: create: ") {
			t.Errorf("errors %v, want one naming tcp/10.96.2.1:80", errs)
		}
		want := []string{"af=2 proto=6 10.96.2.2:80 sched=rr flags=0x2 timeout=0 netmask=0xffffffff -> 10.246.0.1:80/w1/fwd0x0/u0/l0 10.246.0.2:80/w2/fwd0x0/u0/l0"}
		if diff := cmp.Diff(want, dumpTable(t, h)); diff != "" {
			t.Errorf("table (-want +got):\n%s", diff)
		}
	})

	t.Run("batched addresses are the ones bound one by one", func(t *testing.T) {
		ns, _ := kernelNS(t, "addr")
		l := &netlinkLinks{ns: ns, family: "IPv4"}
		if err := l.EnsureDummy(dummyDevice); err != nil {
			t.Fatal(err)
		}
		if err := l.AddAddr(dummyDevice, netip.MustParseAddr("10.96.3.1")); err != nil {
			t.Fatal(err)
		}
		var addrs []netip.Addr
		for i := range 1200 {
			addrs = append(addrs, netip.AddrFrom4([4]byte{10, 96, byte(3 + i/250), byte(1 + i%250)}))
		}
		for i, err := range l.addAddrs(dummyDevice, addrs) {
			if err != nil {
				t.Errorf("address %s: %v (an existing one is no error)", addrs[i], err)
			}
		}
		got, err := l.Addrs(dummyDevice)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, netip.Addr.Compare)
		if diff := cmp.Diff(addrs, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("bound (-want +got):\n%.2000s", diff)
		}
		// As AddAddr binds them: a host prefix, no broadcast.
		out, err := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", dummyDevice).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if !strings.Contains(lines[0], "inet 10.96.3.1/32 scope global kube-ipvs0") || !strings.Contains(lines[1], "inet 10.96.3.2/32 scope global kube-ipvs0") || strings.Contains(string(out), " brd ") {
			t.Errorf("addresses as bound one by one and batched differ:\n%s\n%s", lines[0], lines[1])
		}
	})

	t.Run("batched ipset entries are the ones added one by one", func(t *testing.T) {
		ns, _ := kernelNS(t, "sets")
		one, many := &netlinkIPSet{ns: ns}, &netlinkIPSet{ns: ns}
		a, b := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.244.1.10")
		cases := map[string][]Entry{
			setClusterIP:    {{IP: a, Protocol: 6, Port: 80}, {IP: a, Protocol: 17, Port: 53}},
			setLoopBack:     {{IP: b, Protocol: 17, Port: 53, IP2: b}, {IP: b, Protocol: 6, Port: 53, IP2: b}},
			setLBSourceCIDR: {{IP: a, Protocol: 6, Port: 443, Net: netip.MustParsePrefix("192.0.2.0/24")}, {IP: a, Protocol: 6, Port: 443, Net: netip.MustParsePrefix("198.51.100.0/25")}},
			setIPVSIPs:      {{IP: a}, {IP: b}},
			setNodePortTCP:  {{Port: 30080}, {Port: 30081}},
		}
		for set, es := range cases {
			for _, s := range []*netlinkIPSet{one} {
				if err := s.Create(set, setType(set), 2); err != nil {
					t.Fatal(err)
				}
			}
			if err := one.Add(set, es[0]); err != nil {
				t.Fatal(err)
			}
			// The first is there already: no error, as with Add.
			for i, err := range many.addEntries(set, es) {
				if err != nil {
					t.Errorf("%s %s: %v", set, es[i], err)
				}
			}
			got, err := one.List(set)
			if err != nil {
				t.Fatal(err)
			}
			sortEntries := func(x []Entry) {
				slices.SortFunc(x, func(p, q Entry) int { return strings.Compare(p.String(), q.String()) })
			}
			sortEntries(got)
			want := slices.Clone(es)
			sortEntries(want)
			if diff := cmp.Diff(want, got, cmp.Comparer(func(p, q Entry) bool { return p == q })); diff != "" {
				t.Errorf("set %s (-want +got):\n%s", set, diff)
			}
		}
		if errs := many.addEntries("KUBE-NO-SUCH-SET", []Entry{{IP: a}, {IP: b}}); errs[0] == nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "ipset add KUBE-NO-SUCH-SET 10.244.1.10") {
			t.Errorf("adding to a missing set: %v, want an error naming each entry", errs)
		}
	})
}
