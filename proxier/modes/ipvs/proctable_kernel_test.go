package ipvs

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/ipvs"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
	"github.com/proxyproof/proxyproof/proxier/netns"
)

// realServers lists real servers as "address af fwd/weight/active/inactive",
// what the one-pass read and GetDestinations both give.
func realServers(ds []*ipvs.Destination) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s af%d fwd%d/w%d/a%d/i%d", destKey(d), d.AddressFamily,
			d.ConnectionFlags&ipvs.ConnectionFlagFwdMask, d.Weight, d.ActiveConnections, d.InactiveConnections))
	}
	slices.Sort(out)
	return out
}

// TestKernelOnePassReadListsWhatGetDestinationsDoes compares the
// /proc/net/ip_vs read with netlink's per-virtual-server dumps on a real
// table: IPv4 and IPv6, mixed weights, a Local real server with a
// connection, a persistent virtual server and one without real servers.
func TestKernelOnePassReadListsWhatGetDestinationsDoes(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	ns, h := kernelNS(t, "proc")
	// A decoy in the VM's own namespace: a read of /proc/self/net from a
	// thread switched into ns would find it instead of ns's table.
	root, err := NewHandle("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(root.Close)
	decoy := vsOf("10.96.99.99", 80, 6, "rr", 0, 0)
	if err := root.NewService(decoy); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.DelService(decoy) })

	web := vsOf("10.96.0.1", 80, 6, "rr", 0, 0)
	dns := vsOf("10.96.0.10", 53, 17, "wrr", flagPersistent, 10800)
	empty := vsOf("10.96.0.20", 443, 6, "lc", 0, 0)
	local := vsOf("10.96.0.30", 53, 17, "rr", 0, 0)
	v6 := vsOf("fd00::60:1", 443, 6, "rr", 0, 0)
	ops := []ipvsOp{{kind: opNewService, svc: web}, {kind: opNewService, svc: dns}, {kind: opNewService, svc: empty}, {kind: opNewService, svc: local}, {kind: opNewService, svc: v6}}
	for i := range 40 {
		ops = append(ops, ipvsOp{kind: opNewDest, svc: web, dest: destOf(fmt.Sprintf("10.244.%d.%d", i/10, i%10+1), 8080, i%4)})
	}
	ops = append(ops,
		ipvsOp{kind: opNewDest, svc: dns, dest: destOf("10.244.9.1", 53, 1)},
		ipvsOp{kind: opNewDest, svc: dns, dest: destOf("10.244.9.2", 5353, 100)},
		// A local address: the kernel makes it a Local real server.
		ipvsOp{kind: opNewDest, svc: local, dest: destOf("127.0.0.1", 5353, 2)},
		ipvsOp{kind: opNewDest, svc: v6, dest: destOf("fd00:10:244::a", 8443, 3)},
		ipvsOp{kind: opNewDest, svc: v6, dest: destOf("fd00:10:244::b", 8443, 1)},
	)
	for i, op := range ops {
		if err := op.do(h); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	// One datagram to the local virtual server: a connection in the
	// real server's figures.
	if err := ipCmd("-n", ns, "addr", "add", "10.96.0.30/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	err = netns.Do(ns, func() error {
		c, err := net.Dial("udp4", "10.96.0.30:53")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	tab, err := h.readAllDests()
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := h.GetServices()
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 5 || len(tab.services) != 5 || len(tab.marks) != 0 {
		raw, _ := netns.Cmd(ns, "cat", procIPVSPath).CombinedOutput()
		t.Fatalf("%d virtual servers through netlink, %d in the one-pass read, want 5 each; the file now:\n%s", len(svcs), len(tab.services), raw)
	}
	var conns int
	for _, s := range svcs {
		a, _ := netip.AddrFromSlice(s.Address)
		k := vsKey{a.Unmap(), s.Port, s.Protocol}
		want, err := h.GetDestinations(s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := tab.dests(k)
		if !ok {
			t.Errorf("virtual server %s: not in the one-pass read", k)
			continue
		}
		if diff := cmp.Diff(realServers(want), realServers(got)); diff != "" {
			t.Errorf("virtual server %s: real servers (-GetDestinations +one pass):\n%s", k, diff)
		}
		if ps := tab.services[k]; ps.sched != s.SchedName || ps.persistent != (s.Flags&flagPersistent != 0) {
			t.Errorf("virtual server %s: scheduler %q persistent %v, netlink says %q flags %#x", k, ps.sched, ps.persistent, s.SchedName, s.Flags)
		}
		for _, d := range got {
			conns += d.ActiveConnections + d.InactiveConnections
		}
	}
	if d, _ := tab.dests(vsKey{netip.MustParseAddr("10.96.0.20"), 443, 6}); len(d) != 0 {
		t.Errorf("the virtual server without real servers has %d in the one-pass read", len(d))
	}
	if conns == 0 {
		t.Errorf("no connection counted anywhere: the datagram to 10.96.0.30:53 did not reach IPVS, so the figures were not compared")
	}

	t.Run("each read sees its own namespace from whichever thread", func(t *testing.T) {
		// A read of /proc/self/net only sees ns when it happens to run on
		// the thread group leader switched into ns: many reads at once
		// land on other threads too.
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					want, k := 5, vsKey{netip.MustParseAddr("10.96.0.1"), 80, 6}
					name, tab, err := ns, (*destTable)(nil), error(nil)
					if i%2 == 1 {
						want, k, name = 1, vsKey{netip.MustParseAddr("10.96.99.99"), 80, 6}, "the VM's own"
						tab, err = readProcIPVS("")
					} else {
						tab, err = h.readAllDests()
					}
					if err != nil {
						errs <- err
						return
					}
					if _, ok := tab.dests(k); !ok || len(tab.services) != want {
						errs <- fmt.Errorf("namespace %s: %d virtual servers without %s, want %d with it", name, len(tab.services), k, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
