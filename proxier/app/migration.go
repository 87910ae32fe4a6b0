package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/config"
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
// and should never reach IPVS (in the kernel VM some still appear in its
// table; see connectionCounter). The removal waits, at most drainBound
// after the first sync, until IPVS's connection table holds no
// ESTABLISHED entry; removing at once reset every such connection.
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
	// keep; cleanupMode outside tests.
	clean func(ctx context.Context, cfg *config.Config, name string, keep map[string][]string) error
	// carried lists the connections the previous mode still carries
	// (connectionCounter outside tests); the removal waits for none.
	carried func(ctx context.Context, cfg *config.Config, name string) (carried, error)
	start   time.Time
	// bound is how long after this mode's first sync the removal waits
	// for the old mode's connections at most; poll is how often it looks
	// (drainBound, drainPoll outside tests).
	bound, poll time.Duration
	once        sync.Once
	// removed is closed once the previous mode is gone.
	removed chan struct{}
}

// carried is what the previous mode still carries: its active
// connections, and a few of them named for the log.
type carried struct {
	active int
	named  []string
}

const (
	// drainBound is how long the removal of ipvs waits for its
	// established connections to end: long enough for clients that
	// reconnect every minute, short enough that a connection held for
	// hours does not keep the old mode forever (it is reset then, as
	// without the wait).
	drainBound = 2 * time.Minute
	// drainPoll is how often the drain counts: one netlink dump of the
	// real servers, and a read of the connection table while any of
	// them has an active connection.
	drainPoll = 2 * time.Second
	// namedConns is how many of the connections still carried the log
	// names.
	namedConns = 5
)

var _ daemon.Hook = &migration{}

func newMigration(cfg *config.Config) *migration {
	klog.InfoS("Migrating: the previous mode's rules stay until this mode's first successful sync",
		"from", cfg.MigrateFrom, "to", cfg.Mode)
	return &migration{cfg: cfg, clean: cleanupMode, carried: connectionCounter(), bound: drainBound, poll: drainPoll,
		start: time.Now(), removed: make(chan struct{})}
}

func (m *migration) Name() string { return "migrate-from-" + m.cfg.MigrateFrom }

// AfterSync starts the removal of the previous mode after this mode's
// first successful sync; it runs until done or ctx ends (the proxier
// stops, and the next one started with --migrate-from takes over).
func (m *migration) AfterSync(ctx context.Context, _ *state.View, _ *state.Changes) error {
	m.once.Do(func() { go m.drain(ctx, time.Now()) })
	return nil
}

// drain waits until the previous mode carries no connection, or bound
// has passed since first, then removes it; a failed removal is tried
// again every poll (the rules left are harmless, as above).
func (m *migration) drain(ctx context.Context, first time.Time) {
	last := -1
	for {
		c, err := m.carried(ctx, m.cfg, m.cfg.MigrateFrom)
		waited := time.Since(first)
		switch {
		case (err != nil || c.active > 0) && waited < m.bound:
			// Logged when the count changes, not every poll.
			if c.active != last || err != nil {
				klog.InfoS("Migrating: the previous mode still carries established connections; its rules stay until they end",
					"from", m.cfg.MigrateFrom, "activeConnections", c.active, "connections", c.named, "err", err,
					"waited", waited.Round(time.Millisecond), "bound", m.bound)
			}
			last = c.active
		default:
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

// connectionCounter counts the established connections a mode still
// carries on this node: IPVS's ESTABLISHED ones; none for the modes
// whose established connections live in conntrack, which outlives their
// rules. It keeps the mode it opened (one netlink handle for the whole
// drain).
func connectionCounter() func(ctx context.Context, cfg *config.Config, name string) (carried, error) {
	var prev modes.Mode
	return func(ctx context.Context, cfg *config.Config, name string) (carried, error) {
		if name != config.ModeIPVS {
			return carried{}, nil
		}
		if prev == nil {
			m, err := newMode(ctx, cfg, name, false, nil)
			if errors.Is(err, errModeUnavailable) {
				return carried{}, nil
			}
			if err != nil {
				return carried{}, err
			}
			prev = m
		}
		p, ok := prev.(*ipvs.Proxier)
		if !ok {
			return carried{}, nil
		}
		// The real servers' ActiveConn (one netlink dump) is 0 once
		// nothing is left; it is not the count to wait for: after a
		// switch to nftables in the kernel VM it rose to 40 while the
		// connection table held no ESTABLISHED entry, only SYN_SENT ones
		// IPVS kept adding for new connections (the SYN traced then took
		// the nftables DNAT). The table's ESTABLISHED entries are the
		// connections a removal breaks.
		n, err := p.ActiveConnections()
		if err != nil || n == 0 {
			return carried{active: n}, err
		}
		conns, err := p.EstablishedConnections()
		if err != nil {
			return carried{}, err
		}
		c := carried{active: len(conns)}
		for _, conn := range conns[:min(len(conns), namedConns)] {
			c.named = append(c.named, conn.String())
		}
		return c, nil
	}
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
