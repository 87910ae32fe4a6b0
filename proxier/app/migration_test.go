package app

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/modes/ipvs"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// cleanCall is one removal the migration asked for.
type cleanCall struct {
	mode string
	keep map[string][]string
	at   time.Time
}

// testMigrationHook returns a migration whose removals are recorded and
// fail with cleanErr in turn. Run it in a synctest bubble: its drain
// waits on the bubble's clock.
func testMigrationHook(from, to string, cleanErr ...error) (*migration, *[]cleanCall) {
	var calls []cleanCall
	m := &migration{
		cfg:      &config.Config{Mode: to, MigrateFrom: from},
		start:    time.Now(),
		carried:  func(context.Context, *config.Config, string) (carried, error) { return carried{}, nil },
		finished: func(context.Context, *config.Config, string) ([]ipvs.Conn, error) { return nil, nil },
		bound:    drainBound,
		poll:     drainPoll,
		synced:   make(chan struct{}),
		removed:  make(chan struct{}),
		clean: func(_ context.Context, _ *config.Config, name string, keep map[string][]string) error {
			calls = append(calls, cleanCall{name, keep, time.Now()})
			if len(cleanErr) > 0 {
				err := cleanErr[0]
				cleanErr = cleanErr[1:]
				return err
			}
			return nil
		},
	}
	return m, &calls
}

func afterSync(ctx context.Context, t *testing.T, m *migration) {
	t.Helper()
	if err := m.AfterSync(ctx, &state.View{}, &state.Changes{}); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationRemovesThePreviousModeOnceAfterTheFirstSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeIPTables, config.ModeNFTables)
		synctest.Wait()
		if len(*calls) != 0 {
			t.Fatal("the previous mode was removed before any sync")
		}
		for range 3 {
			afterSync(ctx, t, m)
			synctest.Wait()
		}
		time.Sleep(time.Hour)
		if len(*calls) != 1 || (*calls)[0].mode != config.ModeIPTables {
			t.Errorf("removals over three syncs and an hour = %+v, want iptables once", *calls)
		}
	})
}

func TestLeavingIPVSWaitsForItsEstablishedConnectionsToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeIPVS, config.ModeIPTables)
		counts := []int{3, 1, 0}
		m.carried = func(_ context.Context, _ *config.Config, name string) (carried, error) {
			if name != config.ModeIPVS {
				t.Fatalf("asked mode %s for its connections, want ipvs", name)
			}
			n := counts[0]
			counts = counts[1:]
			return carried{active: n}, nil
		}
		afterSync(ctx, t, m)
		for i, wantRemoved := range []int{0, 0, 1} {
			synctest.Wait()
			if len(*calls) != wantRemoved {
				t.Fatalf("after %d polls: %d removals, want %d (connections carried: 3, 1, 0)", i, len(*calls), wantRemoved)
			}
			if i < 2 {
				time.Sleep(m.poll)
			}
		}
	})
}

// The regression a kept ipvs -> nftables run showed: past the bound, the
// removal waited for a sync with changes, and a quiet node kept ipvs for
// minutes. The drain keeps its own time: one sync is enough.
func TestLeavingIPVSOnAQuietNodeEndsAtTheBoundWithoutAnotherSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeIPVS, config.ModeNFTables)
		m.carried = func(context.Context, *config.Config, string) (carried, error) {
			return carried{active: 5, named: []string{"TCP 10.0.0.5:40000 -> 10.96.0.10:80"}}, nil
		}
		synced := time.Now()
		afterSync(ctx, t, m)
		time.Sleep(m.bound - time.Millisecond)
		synctest.Wait()
		if len(*calls) != 0 {
			t.Fatalf("removed %v after the first sync, before the bound %v, with 5 connections still carried", (*calls)[0].at.Sub(synced), m.bound)
		}
		time.Sleep(m.poll)
		synctest.Wait()
		if len(*calls) != 1 {
			t.Fatalf("%v after the only sync (bound %v): %d removals, want 1", time.Since(synced), m.bound, len(*calls))
		}
		if at := (*calls)[0].at.Sub(synced); at > m.bound+m.poll {
			t.Errorf("removed %v after the first sync, want within one poll (%v) of the bound %v", at, m.poll, m.bound)
		}
		select {
		case <-m.removed:
		default:
			t.Error("removed, but the migration does not say so")
		}
	})
}

func TestAFailedRemovalIsTriedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeNFTables, config.ModeIPTables, errors.New("nft: busy"))
		afterSync(ctx, t, m)
		synctest.Wait()
		if len(*calls) != 1 {
			t.Fatalf("removals after the first sync = %d, want 1 (failing)", len(*calls))
		}
		time.Sleep(m.poll)
		synctest.Wait()
		afterSync(ctx, t, m)
		time.Sleep(time.Hour)
		if len(*calls) != 2 {
			t.Errorf("removals = %+v, want a retry one poll after the failure and nothing once done", *calls)
		}
	})
}

func TestAProxierStoppedMidDrainRemovesNothingMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		m, calls := testMigrationHook(config.ModeIPVS, config.ModeIPTables)
		m.carried = func(context.Context, *config.Config, string) (carried, error) { return carried{active: 1}, nil }
		afterSync(ctx, t, m)
		time.Sleep(m.poll)
		cancel()
		time.Sleep(2 * m.bound)
		synctest.Wait()
		if len(*calls) != 0 {
			t.Errorf("removals after the proxier stopped = %+v, want none: the next proxier with --migrate-from takes over", *calls)
		}
	})
}

func TestTheOldModesCleanupKeepsTheChainsTheNewModeShares(t *testing.T) {
	for _, c := range []struct {
		from, to string
		keep     map[string][]string
	}{
		{config.ModeIPTables, config.ModeIPVS, ipvs.FixedChains()},
		{config.ModeIPVS, config.ModeIPTables, iptables.FixedChains()},
		{config.ModeIPTables, config.ModeNFTables, nil},
		{config.ModeIPVS, config.ModeNFTables, nil},
	} {
		var calls *[]cleanCall
		synctest.Test(t, func(t *testing.T) {
			var m *migration
			m, calls = testMigrationHook(c.from, c.to)
			afterSync(t.Context(), t, m)
			synctest.Wait()
		})
		if got := (*calls)[0].keep; !cmp.Equal(got, c.keep) {
			t.Errorf("%s -> %s: cleanup keeps %v, want %v", c.from, c.to, got, c.keep)
		}
		if c.keep != nil && !slices.Contains(c.keep["nat"], "KUBE-MARK-MASQ") {
			t.Errorf("%s -> %s: KUBE-MARK-MASQ, which both modes jump to, is not kept", c.from, c.to)
		}
	}
}

// TestLeavingIPVSCountsNewConnectionsFromAnIPVSEntrysPort: the removal
// of IPVS expires all its entries, and each deletes the conntrack entry of
// its client address and port, whoever owns it now. A connection the new
// mode carries from the port of an IPVS TIME_WAIT entry is what the
// removal would reset (1-3 per node leaving ipvs under load); it counts,
// and IPVS's own closed connections and unrelated flows do not. Nor does
// an ESTABLISHED entry whose connection conntrack has seen end (one from
// a node's host to its own NodePort kept the drain at its bound).
func TestLeavingIPVSCountsNewConnectionsFromAnIPVSEntrysPort(t *testing.T) {
	ap := netip.MustParseAddrPort
	vip := ap("10.96.0.10:80")
	conns := []ipvs.Conn{
		{Proto: "TCP", Client: ap("10.244.0.5:41000"), Virtual: vip, Real: ap("10.244.1.4:8080"), State: "ESTABLISHED", Expires: 899},
		// IPVS missed their end: conntrack has the first in TIME_WAIT,
		// and no longer holds the second.
		{Proto: "TCP", Client: ap("10.244.0.5:41002"), Virtual: vip, Real: ap("10.244.1.4:8080"), State: "ESTABLISHED", Expires: 758},
		{Proto: "TCP", Client: ap("10.244.0.5:41004"), Virtual: vip, Real: ap("10.244.1.4:8080"), State: "ESTABLISHED", Expires: 120},
		{Proto: "TCP", Client: ap("10.244.0.5:40000"), Virtual: vip, Real: ap("10.244.1.4:8080"), State: "TIME_WAIT", Expires: 97},
		{Proto: "TCP", Client: ap("10.244.0.5:40002"), Virtual: vip, Real: ap("10.244.1.5:8080"), State: "TIME_WAIT", Expires: 98},
		{Proto: "UDP", Client: ap("10.244.0.5:40006"), Virtual: ap("10.96.0.10:53"), Real: ap("10.244.1.5:53"), State: "UDP", Expires: 250},
		// A UDP flow conntrack has forgotten.
		{Proto: "UDP", Client: ap("10.244.0.5:40008"), Virtual: ap("10.96.0.10:53"), Real: ap("10.244.1.5:53"), State: "UDP", Expires: 120},
	}
	flow := func(client, virtual netip.AddrPort, proto uint8, state uint8) *netlink.ConntrackFlow {
		f := &netlink.ConntrackFlow{FamilyType: unix.AF_INET}
		f.Forward = netlink.IPTuple{Protocol: proto, SrcIP: client.Addr().AsSlice(), SrcPort: client.Port(), DstIP: virtual.Addr().AsSlice(), DstPort: virtual.Port()}
		if proto == unix.IPPROTO_TCP {
			f.ProtoInfo = &netlink.ProtoInfoTCP{State: state}
		}
		return f
	}
	flows := []*netlink.ConntrackFlow{
		flow(ap("10.244.0.5:41000"), vip, unix.IPPROTO_TCP, nl.TCP_CONNTRACK_ESTABLISHED),
		flow(ap("10.244.0.5:41002"), vip, unix.IPPROTO_TCP, nl.TCP_CONNTRACK_TIME_WAIT),
		// IPVS's own connection: conntrack holds it in TIME_WAIT too.
		flow(ap("10.244.0.5:40002"), vip, unix.IPPROTO_TCP, nl.TCP_CONNTRACK_TIME_WAIT),
		// The new mode's connection from port 40000: the one to wait for.
		flow(ap("10.244.0.5:40000"), vip, unix.IPPROTO_TCP, nl.TCP_CONNTRACK_ESTABLISHED),
		// The same port to another Service, and another port: no IPVS
		// entry shares their tuple.
		flow(ap("10.244.0.5:40002"), ap("10.96.0.11:80"), unix.IPPROTO_TCP, nl.TCP_CONNTRACK_ESTABLISHED),
		flow(ap("10.244.0.5:40004"), vip, unix.IPPROTO_TCP, nl.TCP_CONNTRACK_SYN_SENT),
		// UDP flows move to the new mode's endpoints with their next
		// datagram; not waited for.
		flow(ap("10.244.0.5:40006"), ap("10.96.0.10:53"), unix.IPPROTO_UDP, 0),
	}
	got := carriedByIPVS(conns, flows)
	want := carried{active: 2, named: []string{
		"TCP 10.244.0.5:41000 -> 10.96.0.10:80 via 10.244.1.4:8080 ESTABLISHED (899 s left)",
		"TCP 10.244.0.5:40000 -> 10.96.0.10:80 through the new mode, from the address and port of IPVS's TIME_WAIT entry (97 s left)",
	}, reused: []ipvs.Conn{conns[3]},
		// What carries nothing: the entries whose end IPVS missed, IPVS's
		// own closed connection, the forgotten UDP flow. Not the live
		// ones, nor the TIME_WAIT entry whose port the new mode took
		// (expiring it would reset that connection).
		idle: []ipvs.Conn{conns[1], conns[2], conns[4], conns[6]}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(carried{}), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("carried (-want +got):\n%s", diff)
	}
	// Once both connections end, nothing is left to break.
	for _, f := range flows {
		if f.ProtoInfo != nil {
			f.ProtoInfo = &netlink.ProtoInfoTCP{State: nl.TCP_CONNTRACK_TIME_WAIT}
		}
	}
	if got := carriedByIPVS(conns, flows); got.active != 0 {
		t.Errorf("after the connection ended: %d carried (%v), want 0", got.active, got.named)
	}
}

// timeWait is IPVS's TIME_WAIT entry of a closed connection from client
// port port to 10.96.0.10:80.
func timeWait(port uint16) ipvs.Conn {
	return ipvs.Conn{Proto: "TCP", Client: netip.AddrPortFrom(netip.MustParseAddr("10.244.0.5"), port),
		Virtual: netip.MustParseAddrPort("10.96.0.10:80"), Real: netip.MustParseAddrPort("10.244.1.4:8080"), State: "TIME_WAIT", Expires: 110}
}

// fakeExpirer records what the drain expires.
type fakeExpirer struct {
	expired [][]ipvs.Conn
	closed  int
}

func (f *fakeExpirer) Expire(conns []ipvs.Conn) (int, error) {
	f.expired = append(f.expired, conns)
	return len(conns), nil
}

func (f *fakeExpirer) Close() error {
	f.closed++
	return nil
}

// TestLeavingIPVSEndsTheExpiryBeforeTheRemoval: the ipvs clean-up stops a
// sync daemon it finds as one a drain left, so the drain stops its own
// first (once), and expires nothing more while a failed removal retries.
func TestLeavingIPVSEndsTheExpiryBeforeTheRemoval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeIPVS, config.ModeIPTables, errors.New("iptables-restore: busy"))
		fake := &fakeExpirer{}
		m.openExpirer = func(string) (expirer, error) { return fake, nil }
		idle := []ipvs.Conn{timeWait(40000)}
		m.carried = func(context.Context, *config.Config, string) (carried, error) { return carried{idle: idle}, nil }
		closedAtRemoval := -1
		clean := m.clean
		m.clean = func(ctx context.Context, cfg *config.Config, name string, keep map[string][]string) error {
			if closedAtRemoval < 0 {
				closedAtRemoval = fake.closed
			}
			return clean(ctx, cfg, name, keep)
		}
		afterSync(ctx, t, m)
		time.Sleep(3 * m.poll)
		synctest.Wait()
		if closedAtRemoval != 1 || fake.closed != 1 || len(fake.expired) != 1 || len(*calls) != 2 {
			t.Errorf("expiry closed %d times before the first removal, %d in all; %d rounds expired; %d removals; want closed once before it, one round, a retried removal",
				closedAtRemoval, fake.closed, len(fake.expired), len(*calls))
		}
	})
}

// TestLeavingIPVSExpiresItsIdleEntriesFromTheFirstPoll: right after the
// new mode's first sync, and at every poll after, the drain expires the
// IPVS entries that carry nothing (before a new connection can take their
// client port); it opens the expiry once, in the node's namespace, and
// stops it when IPVS is gone.
func TestLeavingIPVSExpiresItsIdleEntriesFromTheFirstPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeIPVS, config.ModeIPTables)
		m.cfg.NetNS = "node-1"
		polls := []carried{
			{active: 1, idle: []ipvs.Conn{timeWait(40000), timeWait(40002)}},
			{active: 1, idle: []ipvs.Conn{timeWait(40004)}}, // the held connection closed
			{},
		}
		fake := &fakeExpirer{}
		var opened []string
		m.openExpirer = func(ns string) (expirer, error) {
			opened = append(opened, ns)
			return fake, nil
		}
		m.carried = func(context.Context, *config.Config, string) (carried, error) {
			c := polls[0]
			if len(polls) > 1 {
				polls = polls[1:]
			}
			return c, nil
		}
		afterSync(ctx, t, m)
		synctest.Wait()
		if len(fake.expired) != 1 || len(fake.expired[0]) != 2 {
			t.Fatalf("right after the first sync the drain expired %v, want the two idle entries", fake.expired)
		}
		time.Sleep(m.poll)
		synctest.Wait()
		time.Sleep(m.poll)
		synctest.Wait()
		if len(*calls) != 1 {
			t.Fatalf("removals = %d, want 1 once nothing is carried", len(*calls))
		}
		want := [][]ipvs.Conn{{timeWait(40000), timeWait(40002)}, {timeWait(40004)}}
		if diff := cmp.Diff(want, fake.expired, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("expired per poll (-want +got):\n%s", diff)
		}
		if !slices.Equal(opened, []string{"node-1"}) || fake.closed != 1 {
			t.Errorf("expiry opened in %q and closed %d times, want once in node-1, closed once when the drain ended", opened, fake.closed)
		}
	})
}

// TestLeavingIPVSWithoutTheExpiryStillDrains: where the expiry cannot
// start (an operator's own sync daemon runs), the drain waits as before
// and tries no second time.
func TestLeavingIPVSWithoutTheExpiryStillDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeIPVS, config.ModeIPTables)
		idle := []ipvs.Conn{timeWait(40000)}
		counts := []int{1, 1, 0}
		m.carried = func(context.Context, *config.Config, string) (carried, error) {
			n := counts[0]
			counts = counts[1:]
			return carried{active: n, idle: idle}, nil
		}
		opens := 0
		m.openExpirer = func(string) (expirer, error) {
			opens++
			return nil, ipvs.ErrSyncDaemonBusy
		}
		afterSync(ctx, t, m)
		time.Sleep(3 * m.poll)
		synctest.Wait()
		if len(*calls) != 1 || opens != 1 {
			t.Errorf("removals %d, expiry opened %d times; want IPVS removed once nothing is carried, one try to open", len(*calls), opens)
		}
	})
}

// TestLeavingIPVSExpiresIdleEntriesBeforeTheFirstSync: started, the
// migration expires IPVS's idle entries at once, before this mode's
// first sync (when no connection of this mode can sit on their ports),
// removes nothing then, and drains as usual after the sync with the same
// expiry open.
func TestLeavingIPVSExpiresIdleEntriesBeforeTheFirstSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		m, calls := testMigrationHook(config.ModeIPVS, config.ModeNFTables)
		idle := []ipvs.Conn{timeWait(40000)}
		m.finished = func(context.Context, *config.Config, string) ([]ipvs.Conn, error) { return idle, nil }
		m.carried = func(context.Context, *config.Config, string) (carried, error) {
			select {
			case <-m.synced:
			default:
				t.Error("the conntrack-reading count ran before the first sync")
			}
			return carried{}, nil
		}
		fake := &fakeExpirer{}
		opens := 0
		m.openExpirer = func(string) (expirer, error) {
			opens++
			return fake, nil
		}
		m.Begin(ctx)
		synctest.Wait()
		if len(fake.expired) != 1 {
			t.Fatalf("at start: expired %v, want the ended connection's entry", fake.expired)
		}
		time.Sleep(3*m.poll + time.Millisecond)
		synctest.Wait()
		if len(fake.expired) != 4 || len(*calls) != 0 || fake.closed != 0 {
			t.Fatalf("three polls after start, no sync: %d rounds, removals %d, expiry closed %d; want a round each poll, nothing removed, the expiry open",
				len(fake.expired), len(*calls), fake.closed)
		}
		afterSync(ctx, t, m)
		synctest.Wait()
		if len(*calls) != 1 || opens != 1 || fake.closed != 1 {
			t.Errorf("after the first sync: removals %d, expiry opened %d and closed %d times; want 1 each", len(*calls), opens, fake.closed)
		}
	})
}
