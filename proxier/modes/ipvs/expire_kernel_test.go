package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
	"github.com/proxyproof/proxyproof/proxier/netns"
)

// loFlags reads the raw flags of ns's loopback device.
func loFlags(t *testing.T, ns string) uint32 {
	t.Helper()
	var flags uint32
	err := netns.Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			flags = lo.Attrs().RawFlags
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

// TestKernelTheExpirerEndsIdleEntriesAndLeavesTheRest: closed connections'
// entries (2 minutes of TIME_WAIT left) are gone within seconds of
// Expire, a held connection's entry keeps its 15 minutes and its
// connection; Close stops the daemon and leaves lo as it was; someone
// else's daemon is neither used nor stopped.
func TestKernelTheExpirerEndsIdleEntriesAndLeavesTheRest(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	tp := newKernelTopo(t, 1)
	tp.serve(t)
	ctx := context.Background()
	p, err := New(ctx, Options{NetNS: tp.node})
	if err != nil {
		t.Fatalf("New in the VM: %v", err)
	}
	t.Cleanup(func() { _ = p.Cleanup(ctx) })
	mustSync(t, p, view(kernelService("web", "10.96.0.130", v1.ProtocolTCP, 0)), full())
	vip := netip.MustParseAddrPort("10.96.0.130:80")
	for range 3 {
		if _, err := tp.askTCP("192.168.77.2", vip); err != nil {
			t.Fatal(err)
		}
	}
	_, held, err := tp.dialTCP("192.168.77.3", vip)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	// entries splits IPVS's table: the closed connections' entries and
	// the held one's.
	entries := func() (closed []Conn, open *Conn) {
		conns, err := p.Connections()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			switch {
			case c.Client.Addr() == netip.MustParseAddr("192.168.77.3"):
				open = &c
			case c.State != "ESTABLISHED":
				closed = append(closed, c)
			}
		}
		return closed, open
	}
	deadline := time.Now().Add(30 * time.Second)
	closed, open := entries()
	for (len(closed) < 3 || open == nil) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		closed, open = entries()
	}
	if len(closed) != 3 || open == nil || open.State != "ESTABLISHED" {
		t.Fatalf("IPVS holds %v closed and %v open; want 3 closed entries and the held connection's", closed, open)
	}
	t.Logf("before: %v", closed)
	loBefore := loFlags(t, tp.node)

	e, err := OpenExpirer(tp.node)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.Expire(closed); err != nil || n != 3 {
		t.Fatalf("Expire sent %d entries: %v; want 3", n, err)
	}
	start := time.Now()
	for len(closed) > 0 && time.Since(start) < 30*time.Second {
		time.Sleep(200 * time.Millisecond)
		closed, open = entries()
	}
	if len(closed) > 0 {
		t.Fatalf("%v after Expire IPVS still holds %v", time.Since(start).Round(time.Millisecond), closed)
	}
	t.Logf("the closed connections' entries were gone %v after Expire", time.Since(start).Round(time.Millisecond))
	if open == nil || open.Expires < 800 {
		t.Errorf("the held connection's entry = %v, want it left with its ~900 s", open)
	}
	if _, err := held.Write([]byte("still there\n")); err != nil {
		t.Errorf("the held connection after Expire: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := backupDaemon(tp.node); err == nil {
		t.Error("the backup sync daemon still runs after Close")
	}
	if got := loFlags(t, tp.node); got != loBefore {
		t.Errorf("lo's flags after Close = %#x, before Open %#x", got, loBefore)
	}

	// A daemon an earlier proxier's drain left (it stopped before its
	// Close): adopted, and stopped by the next one's Close.
	left, err := OpenExpirer(tp.node)
	if err != nil {
		t.Fatal(err)
	}
	next, err := OpenExpirer(tp.node)
	if err != nil || !next.Adopted() {
		t.Fatalf("OpenExpirer beside a daemon an earlier proxier left: %v (adopted %v), want it adopted", err, next != nil && next.Adopted())
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := backupDaemon(tp.node); err == nil {
		t.Error("the adopted daemon still runs after Close")
	}
	if err := left.Close(); err != nil {
		t.Errorf("closing the first Expirer after its daemon was stopped: %v", err)
	}
	// One left with no proxier to adopt it: --cleanup stops it.
	if _, err := OpenExpirer(tp.node); err != nil {
		t.Fatal(err)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := backupDaemon(tp.node); err == nil {
		t.Error("the daemon a drain left still runs after the ipvs mode's Cleanup")
	}

	// An operator's daemon: refused, and still running afterwards.
	if out, err := netns.Cmd(tp.node, "ipvsadm", "--start-daemon", "backup", "--mcast-interface", "lo", "--syncid", "7").CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm --start-daemon: %v: %s", err, out)
	}
	defer func() { _ = netns.Cmd(tp.node, "ipvsadm", "--stop-daemon", "backup").Run() }()
	if e, err := OpenExpirer(tp.node); !errors.Is(err, ErrSyncDaemonBusy) {
		if e != nil {
			e.Close()
		}
		t.Fatalf("OpenExpirer beside an operator's daemon: %v, want ErrSyncDaemonBusy", err)
	} else {
		t.Logf("beside an operator's daemon: %v", err)
	}
	if d, err := backupDaemon(tp.node); err != nil || d.syncID != 7 {
		t.Errorf("the operator's daemon after the refusal: %+v, %v; want it running, sync id 7", d, err)
	}
}
