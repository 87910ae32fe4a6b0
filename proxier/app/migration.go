package app

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/conntrack"
	"github.com/proxyproof/proxyproof/proxier/daemon"
	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/modes/ipvs"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// migration is --migrate-from: make before break. The node still carries
// the previous mode's rules (frozen since its proxier stopped), so Services
// keep working while this mode writes its own; the previous mode's rules
// are removed only after this mode's first successful sync, with the
// per-mode Cleanup that --cleanup runs.
//
// Why both sets may coexist for that moment: every NAT hook (iptables
// nat, our nftables table, both at dstnat priority) goes through
// nf_nat, which binds a new connection at the first chain that translates
// it and never asks the others; either set DNATs to a valid endpoint (the
// previous one as of when its proxier stopped), and established flows keep
// their conntrack binding when rules go. Both modes mark for masquerade
// with the same bit (masqueradeBit), so either POSTROUTING masquerades
// what either PREROUTING marked.
//
// Leaving ipvs waits for IPVS to drain first: an established connection
// IPVS carries keeps reaching IPVS (its packets skip the new mode's NAT,
// which sees new connections only, and are routed to the ClusterIP on
// kube-ipvs0), so it lives exactly as long as the virtual servers and
// kube-ipvs0 do. New connections take the new mode's DNAT before routing
// and do not reach IPVS (counted in the kernel VM: no SYN to a ClusterIP
// reached INPUT after the first sync), but one from the client address
// and port of an old IPVS entry loses its conntrack entry when that
// entry expires (carriedByIPVS). The removal waits, at most drainBound
// after the first sync, until neither kind is left; removing at once
// reset every such connection. So that few new connections land on such
// a port at all, every poll expires IPVS's entries that carry nothing
// any more (drainExpiry, through IPVS's sync daemon: ipvs.Expirer).
//
// The wait runs on its own timer (drainPoll), not on syncs: a quiet node
// may not sync for a whole syncPeriod, and a node with nothing to change
// does not sync at all, which left ipvs in place minutes past the bound.
// The removal runs beside the new mode's syncs: it touches only what the
// old mode alone writes (sharedChains are kept), and iptables writes
// wait for each other on the xtables lock.
//
// Why an explicit flag and not detecting leftovers at start-up: the same
// rules are what a second proxier, still running (a half-finished
// rollout, a rollback), needs; removing them on a guess would break that
// node. The operator says which mode the node is leaving.
type migration struct {
	cfg *config.Config
	// clean removes the previous mode's rules but the iptables chains in
	// keep; oldMode.clean outside tests.
	clean func(ctx context.Context, cfg *config.Config, name string, keep map[string][]string) error
	// carried lists the connections a removal would break
	// (oldMode.carried outside tests); the removal waits for none.
	carried func(ctx context.Context, cfg *config.Config, name string) (carried, error)
	// finished lists IPVS's entries of ended connections, before this
	// mode's first sync (oldMode.finished outside tests).
	finished func(ctx context.Context, cfg *config.Config, name string) ([]ipvs.Conn, error)
	// openExpirer starts expiring IPVS entries in a network namespace
	// (ipvs.OpenExpirer outside tests); the drain opens it at the first
	// idle entry, and closes it when it ends.
	openExpirer func(ns string) (expirer, error)
	start       time.Time
	// bound is how long after this mode's first sync the removal waits
	// for the old mode's connections at most; poll is how often it looks
	// (drainBound, drainPoll outside tests).
	bound, poll time.Duration
	once, began sync.Once
	// synced is closed at this mode's first successful sync, at
	// firstSync.
	synced    chan struct{}
	firstSync time.Time
	// removed is closed once the previous mode is gone.
	removed chan struct{}
}

// carried is what removing the previous mode would break now: how many
// connections (carriedByIPVS), and a few of them named for the log;
// reused are the IPVS entries, other than ESTABLISHED, whose client
// address and port a live connection of the new mode took up; idle are
// the IPVS entries that carry no connection any more, to expire now.
type carried struct {
	active int
	named  []string
	reused []ipvs.Conn
	idle   []ipvs.Conn
}

// expirer ends IPVS entries early (ipvs.Expirer outside tests).
type expirer interface {
	Expire(conns []ipvs.Conn) (int, error)
	Close() error
}

const (
	// drainBound is how long the removal of ipvs waits for its
	// established connections to end: long enough for clients that
	// reconnect every minute, short enough that a connection held for
	// hours does not keep the old mode forever (it is reset then, as
	// without the wait).
	drainBound = 2 * time.Minute
	// drainPoll is how often the drain counts: a read of IPVS's
	// connection table, and a conntrack dump while it holds entries.
	drainPoll = 2 * time.Second
	// namedConns is how many of the connections still carried the log
	// names.
	namedConns = 5
)

var _ daemon.Hook = &migration{}

func newMigration(cfg *config.Config) *migration {
	klog.InfoS("Migrating: the previous mode's rules stay until this mode's first successful sync",
		"from", cfg.MigrateFrom, "to", cfg.Mode)
	old := &oldMode{}
	return &migration{cfg: cfg, clean: old.clean, carried: old.carried, finished: old.finished, openExpirer: openIPVSExpirer,
		bound: drainBound, poll: drainPoll, start: time.Now(), synced: make(chan struct{}), removed: make(chan struct{})}
}

func (m *migration) Name() string { return "migrate-from-" + m.cfg.MigrateFrom }

// Begin starts the migration's work in the background, at proxier start:
// leaving ipvs, a round of expiring IPVS's entries of ended connections
// every poll until this mode's first sync, then (after that sync) the
// drain and the removal.
// It runs until done or ctx ends (the proxier stops, and the next one
// started with --migrate-from takes over).
//
// Why a round before the first sync: until then IPVS carries every new
// connection, so no connection of this mode can sit on an entry's client
// port, and the entries of connections that ended in IPVS's last 2
// minutes (2,400 per client at 20 connections a second) are expired
// before their ports come back. It reads IPVS's table alone (finished):
// with the drain's conntrack dump too it took 22 s of the kernel VM's one
// vCPU under load, beside the first sync (4 requests of one client timed
// out meanwhile, in 0.35 s; a starved VM is the likely cause, not
// proven). The drain's first poll, after the sync, also comes later than
// it looks: one dump took 7 s there, and a connection of this mode that
// took the port of an entry the dump had just seen closed was reset when
// the drain expired it (once in 5,768 requests). Rounds every poll until
// the sync leave the drain only entries closed in the last poll, ports
// the kernel hands out again last. What each round risks: a client
// whose new connection takes an entry's port between the read and the
// kernel's handling of the message (well under a second) and IPVS sends
// it to the same real server; the message then ends that connection's
// entry.
func (m *migration) Begin(ctx context.Context) {
	m.began.Do(func() { go m.run(ctx) })
}

// AfterSync marks this mode's first successful sync, which lets the
// drain begin (Begin, if the proxier has not called it).
func (m *migration) AfterSync(ctx context.Context, _ *state.View, _ *state.Changes) error {
	m.once.Do(func() {
		m.firstSync = time.Now()
		close(m.synced)
		m.Begin(ctx)
	})
	return nil
}

func (m *migration) run(ctx context.Context) {
	exp := &drainExpiry{open: m.openExpirer, ns: m.cfg.NetNS}
	defer exp.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.synced:
			m.drain(ctx, m.firstSync, exp)
			return
		default:
		}
		if done, err := m.finished(ctx, m.cfg, m.cfg.MigrateFrom); err == nil {
			exp.expire(done)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.synced:
		case <-time.After(m.poll):
		}
	}
}

// drain waits until the previous mode carries no connection, or bound
// has passed since first, then removes it; a failed removal is tried
// again every poll (the rules left are harmless, as above). Each poll
// expires the idle IPVS entries it finds through exp.
func (m *migration) drain(ctx context.Context, first time.Time, exp *drainExpiry) {
	last := -1
	seen := map[[2]netip.AddrPort]bool{}
	for {
		c, err := m.carried(ctx, m.cfg, m.cfg.MigrateFrom)
		waited := time.Since(first)
		logReused(c.reused, seen)
		exp.expire(c.idle)
		switch {
		case (err != nil || c.active > 0) && waited < m.bound:
			// Logged when the count changes, not every poll.
			if c.active != last || err != nil {
				klog.InfoS("Migrating: removing the previous mode now would break connections; its rules stay until they end",
					"from", m.cfg.MigrateFrom, "activeConnections", c.active, "connections", c.named, "err", err,
					"waited", waited.Round(time.Millisecond), "bound", m.bound)
			}
			last = c.active
		default:
			// The expiry ends first: the ipvs clean-up stops any sync
			// daemon it finds on lo as one a drain left behind.
			exp.close()
			if err := m.clean(ctx, m.cfg, m.cfg.MigrateFrom, sharedChains(m.cfg.MigrateFrom, m.cfg.Mode)); err != nil {
				klog.ErrorS(err, "Migrating: removing the previous mode failed; trying again", "from", m.cfg.MigrateFrom, "to", m.cfg.Mode)
				break
			}
			klog.InfoS("Migrated: removed the previous mode's rules",
				"from", m.cfg.MigrateFrom, "to", m.cfg.Mode, "activeConnectionsReset", c.active, "connections", c.named,
				"afterFirstSync", waited.Round(time.Millisecond), "sinceStart", time.Since(m.start).Round(time.Millisecond))
			close(m.removed)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.poll):
		}
	}
}

// drainExpiry expires the IPVS entries each round hands it: the ended
// connections' before the first sync (Begin), the idle ones at each poll
// of the drain (carriedByIPVS). Every entry expired before a new
// connection takes its client port is one fewer connection to reset (or
// to wait for); without it, leaving ipvs under 20 new connections a
// second reset 0-3 per node. It opens the expiry at the first entry.
type drainExpiry struct {
	open func(ns string) (expirer, error)
	ns   string
	e    expirer
	// off: opening failed (someone else's sync daemon, a kernel without
	// it); the drain goes on without, waiting as before.
	off     bool
	expired int
}

func (d *drainExpiry) expire(idle []ipvs.Conn) {
	if len(idle) == 0 || d.off || d.open == nil {
		return
	}
	if d.e == nil {
		e, err := d.open(d.ns)
		if err != nil {
			klog.InfoS("Migrating: cannot expire IPVS's idle entries early; waiting for them instead", "err", err)
			d.off = true
			return
		}
		d.e = e
	}
	n, err := d.e.Expire(idle)
	d.expired += n
	if err != nil {
		klog.ErrorS(err, "Migrating: expiring IPVS's idle entries failed; trying again at the next poll", "entries", len(idle))
		return
	}
	klog.V(2).InfoS("Migrating: expired IPVS entries that carry no connection", "entries", n, "total", d.expired)
}

func (d *drainExpiry) close() {
	d.off = true // a removal that fails and is retried expires no more
	if d.e == nil {
		return
	}
	if err := d.e.Close(); err != nil {
		klog.ErrorS(err, "Migrating: stopping the expiry of IPVS entries")
	}
	klog.InfoS("Migrating: expired IPVS entries that carried no connection", "entries", d.expired)
	d.e = nil
}

// openIPVSExpirer is ipvs.OpenExpirer as the drain takes it.
func openIPVSExpirer(ns string) (expirer, error) {
	e, err := ipvs.OpenExpirer(ns)
	if err != nil {
		return nil, err
	}
	if e.Adopted() {
		klog.InfoS("Migrating: adopted the IPVS sync daemon an earlier proxier's drain left running; it stops when this drain ends")
	}
	return e, nil
}

// logReused logs, once per connection, each new-mode connection on the
// client port of an IPVS entry: the kernel deletes its conntrack entry
// when that entry expires (carriedByIPVS), which no wait can prevent, and
// a client that sees the connection reset then is told by the log why.
func logReused(reused []ipvs.Conn, seen map[[2]netip.AddrPort]bool) {
	for _, r := range reused {
		k := [2]netip.AddrPort{r.Client, r.Virtual}
		if seen[k] {
			continue
		}
		seen[k] = true
		klog.V(2).InfoS("Migrating: a connection of this mode took the client port of an IPVS entry; the kernel deletes its conntrack entry when that entry expires",
			"client", r.Client, "service", r.Virtual, "ipvsState", r.State,
			"ipvsExpires", time.Now().Add(time.Duration(r.Expires)*time.Second).Format(time.TimeOnly))
	}
}

// oldMode is the previous mode, opened once for the whole drain: the
// count and the removal share it, so that the removal's first step (the
// flush of IPVS) follows the count that allowed it at once. Opened at
// removal time, it took 1.3 s in the kernel VM (a netlink handle, after a
// modprobe), and new connections from the ports of IPVS's entries that
// began in that gap were what the flush reset (4 in one validate run).
type oldMode struct {
	mode modes.Mode
}

// get opens mode name the first time, keeping the iptables chains in keep
// when it cleans up.
func (o *oldMode) get(ctx context.Context, cfg *config.Config, name string, keep map[string][]string) (modes.Mode, error) {
	if o.mode != nil {
		return o.mode, nil
	}
	m, err := newMode(ctx, cfg, name, false, keep)
	if err != nil {
		return nil, err
	}
	if p, ok := m.(*ipvs.Proxier); ok {
		if err := p.OpenHandle(); err != nil {
			return nil, err
		}
	}
	o.mode = m
	return m, nil
}

// carried counts the connections a removal of mode would break on this
// node (carriedByIPVS); none for the modes whose established connections
// live in conntrack, which outlives their rules.
func (o *oldMode) carried(ctx context.Context, cfg *config.Config, name string) (carried, error) {
	conns, err := o.connections(ctx, cfg, name)
	if err != nil || len(conns) == 0 {
		return carried{}, err
	}
	flows, err := conntrack.Flows(cfg.NetNS)
	if err != nil {
		return carried{}, err
	}
	return carriedByIPVS(conns, flows), nil
}

// finished lists IPVS's entries of connections that have ended (TCP
// TIME_WAIT and CLOSE: both ends' FIN seen, or a reset), from the
// connection table alone: no conntrack dump, which under load in the
// kernel VM took seconds of the one vCPU at the proxier's start, while
// IPVS still carried every connection.
func (o *oldMode) finished(ctx context.Context, cfg *config.Config, name string) ([]ipvs.Conn, error) {
	conns, err := o.connections(ctx, cfg, name)
	var out []ipvs.Conn
	for _, c := range conns {
		if c.Proto == "TCP" && (c.State == "TIME_WAIT" || c.State == "CLOSE") {
			out = append(out, c)
		}
	}
	return out, err
}

// connections is IPVS's connection table when mode name is ipvs (none
// for the others, or without ip_vs).
func (o *oldMode) connections(ctx context.Context, cfg *config.Config, name string) ([]ipvs.Conn, error) {
	if name != config.ModeIPVS {
		return nil, nil
	}
	m, err := o.get(ctx, cfg, name, sharedChains(name, cfg.Mode))
	if errors.Is(err, errModeUnavailable) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, ok := m.(*ipvs.Proxier)
	if !ok {
		return nil, nil
	}
	// The connection table, not the real servers' ActiveConn: after a
	// switch to nftables in the kernel VM ActiveConn rose to 40 while the
	// table held no ESTABLISHED entry.
	return p.Connections()
}

// clean removes mode name but the iptables chains in keep, as --cleanup
// does (leaving a mode, the keep its count opened it with: the same
// sharedChains).
func (o *oldMode) clean(ctx context.Context, cfg *config.Config, name string, keep map[string][]string) error {
	m, err := o.get(ctx, cfg, name, keep)
	if errors.Is(err, errModeUnavailable) {
		klog.V(2).InfoS("Nothing to clean up for mode", "mode", name, "reason", err)
		return nil
	}
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.Cleanup(cctx); err != nil {
		return fmt.Errorf("clean up %s: %w", name, err)
	}
	return nil
}

// ipvsEstablished is the state /proc/net/ip_vs_conn gives a connection
// IPVS carries.
const ipvsEstablished = "ESTABLISHED"

// carriedByIPVS is what removing IPVS would break, given its connection
// table and the node's conntrack table:
//
//   - the connections IPVS carries (ESTABLISHED): their packets reach IPVS
//     through the ClusterIP on kube-ipvs0, and go nowhere once it is gone.
//     Only those conntrack still holds open: IPVS missed the end of some
//     (an ESTABLISHED entry from a node's host to its own NodePort sat
//     idle, counting down from 900 s, for the whole 2-minute drain while
//     conntrack had closed it), and every packet IPVS carries passes
//     conntrack first, so a live one has a live conntrack entry;
//   - the connections the new mode carries whose client address and port
//     are those of an IPVS entry in any other state (a TIME_WAIT one, 2
//     minutes). When an IPVS entry expires, the kernel deletes the
//     conntrack entry of its client address and port to the virtual
//     address (ip_vs_conn_drop_conntrack: by tuple, whoever owns it now),
//     so the new mode's connection loses its NAT binding: its next packet
//     is NATed afresh, to any endpoint, and the server answers with a
//     reset. Removing IPVS expires every entry at once.
//
// The second kind was what broke 1-3 of 16,000 requests per node leaving
// ipvs in the kernel VM: a client making 20 connections a second comes
// back to a port within IPVS's 2 minutes of TIME_WAIT (Linux hands out
// ports in order per destination), and a held connection that did so was
// reset at the removal (reproduced by hand: the port reused, ipvsadm -C,
// the next request reset). Waiting until none is live saves each one
// that ends before its IPVS entry would have expired anyway; the kernel
// cannot keep an entry from deleting a conntrack entry it does not own.
//
// So that few connections come to that, the drain expires every entry
// that carries no connection (idle) as soon as it finds it: a TCP entry
// whose tuple conntrack does not hold open (IPVS's closed connections,
// and ESTABLISHED entries whose end IPVS missed), a UDP entry whose
// tuple conntrack no longer has. An entry whose tuple is live is left:
// expiring it would delete the conntrack entry of a live connection.
func carriedByIPVS(conns []ipvs.Conn, flows []*netlink.ConntrackFlow) carried {
	var c carried
	name := func(s string) {
		if len(c.named) < namedConns {
			c.named = append(c.named, s)
		}
	}
	type key struct {
		proto           uint8
		client, virtual netip.AddrPort
	}
	// The conntrack entries by their original tuple: the client's
	// address and port to the address it asked for (present), and those
	// of TCP still carrying data (live).
	live, present := map[key]bool{}, map[key]bool{}
	for _, f := range flows {
		src, ok1 := netip.AddrFromSlice(f.Forward.SrcIP)
		dst, ok2 := netip.AddrFromSlice(f.Forward.DstIP)
		if !ok1 || !ok2 {
			continue
		}
		k := key{f.Forward.Protocol, netip.AddrPortFrom(src.Unmap(), f.Forward.SrcPort), netip.AddrPortFrom(dst.Unmap(), f.Forward.DstPort)}
		present[k] = true
		if tcp, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok && liveTCP(tcp.State) {
			live[k] = true
		}
	}
	for _, conn := range conns {
		switch conn.Proto {
		case "TCP":
			if !live[key{unix.IPPROTO_TCP, conn.Client, conn.Virtual}] {
				c.idle = append(c.idle, conn)
				continue
			}
		case "UDP":
			if !present[key{unix.IPPROTO_UDP, conn.Client, conn.Virtual}] {
				c.idle = append(c.idle, conn)
			}
			continue
		default:
			continue
		}
		switch {
		case conn.State == ipvsEstablished:
			c.active++
			name(conn.String())
		default:
			c.active++
			c.reused = append(c.reused, conn)
			name(fmt.Sprintf("TCP %s -> %s through the new mode, from the address and port of IPVS's %s entry (%d s left)", conn.Client, conn.Virtual, conn.State, conn.Expires))
		}
	}
	return c
}

// liveTCP says whether a conntrack TCP state is a connection that still
// carries data: not yet, or no longer, TIME_WAIT or CLOSE.
func liveTCP(state uint8) bool {
	switch state {
	case nl.TCP_CONNTRACK_NONE, nl.TCP_CONNTRACK_TIME_WAIT, nl.TCP_CONNTRACK_CLOSE:
		return false
	}
	return true
}

// sharedChains are the iptables chains the new mode writes too, which the
// old mode's cleanup must leave: kube-proxy's ipvs mode uses iptables for
// masquerade and filtering under the iptables mode's names (KUBE-SERVICES,
// KUBE-POSTROUTING, KUBE-MARK-MASQ, ...). Deleting them would undo the new
// mode's first sync; the iptables cleanup even fails on them ("Device or
// resource busy": the new mode's own chains jump to KUBE-MARK-MASQ).
func sharedChains(from, to string) map[string][]string {
	switch {
	case from == config.ModeIPTables && to == config.ModeIPVS:
		return ipvs.FixedChains()
	case from == config.ModeIPVS && to == config.ModeIPTables:
		return iptables.FixedChains()
	}
	return nil
}
