package app

import (
	"context"
	"errors"
	"fmt"
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
// and never reach IPVS, so the count only falls. The removal waits, at
// most drainBound after the first sync, until no real server has an
// active connection; removing at once reset every such connection.
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
	// active counts the connections the previous mode still carries
	// (activeConnections outside tests); the removal waits for 0.
	active func(ctx context.Context, cfg *config.Config, name string) (int, error)
	done   bool
	start  time.Time
	// firstSync is when this mode first synced: the drain's start; the
	// drain lasts at most bound (drainBound outside tests).
	firstSync time.Time
	bound     time.Duration
}

// drainBound is how long the removal of ipvs waits for its established
// connections to end: long enough for clients that reconnect every
// minute, short enough that a connection held for hours does not keep
// the old mode forever (it is reset then, as without the wait).
const drainBound = 2 * time.Minute

var _ daemon.Hook = &migration{}

func newMigration(cfg *config.Config) *migration {
	klog.InfoS("Migrating: the previous mode's rules stay until this mode's first successful sync",
		"from", cfg.MigrateFrom, "to", cfg.Mode)
	return &migration{cfg: cfg, clean: cleanupMode, active: connectionCounter(), bound: drainBound, start: time.Now()}
}

func (m *migration) Name() string { return "migrate-from-" + m.cfg.MigrateFrom }

// AfterSync removes the previous mode's rules once. A failed removal is
// tried again after the next sync: the rules left are harmless, as above.
func (m *migration) AfterSync(ctx context.Context, _ *state.View, _ *state.Changes) error {
	if m.done {
		return nil
	}
	synced := time.Now()
	if m.firstSync.IsZero() {
		m.firstSync = synced
	}
	if n, err := m.active(ctx, m.cfg, m.cfg.MigrateFrom); (err != nil || n > 0) && synced.Sub(m.firstSync) < m.bound {
		klog.InfoS("Migrating: the previous mode still carries established connections; its rules stay until they end",
			"from", m.cfg.MigrateFrom, "activeConnections", n, "err", err, "waited", synced.Sub(m.firstSync), "bound", m.bound)
		return nil
	}
	if err := m.clean(ctx, m.cfg, m.cfg.MigrateFrom, sharedChains(m.cfg.MigrateFrom, m.cfg.Mode)); err != nil {
		return fmt.Errorf("remove the rules of mode %s after migrating to %s: %w", m.cfg.MigrateFrom, m.cfg.Mode, err)
	}
	m.done = true
	klog.InfoS("Migrated: removed the previous mode's rules after this mode's first sync",
		"from", m.cfg.MigrateFrom, "to", m.cfg.Mode, "removal", time.Since(synced), "sinceStart", time.Since(m.start))
	return nil
}

// connectionCounter counts the established connections a mode still
// carries on this node: IPVS's active connections; 0 for the modes whose
// established connections live in conntrack, which outlives their rules.
// It keeps the mode it opened (one netlink handle for the whole drain).
func connectionCounter() func(ctx context.Context, cfg *config.Config, name string) (int, error) {
	var prev modes.Mode
	return func(ctx context.Context, cfg *config.Config, name string) (int, error) {
		if name != config.ModeIPVS {
			return 0, nil
		}
		if prev == nil {
			m, err := newMode(ctx, cfg, name, false, nil)
			if errors.Is(err, errModeUnavailable) {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			prev = m
		}
		c, ok := prev.(interface{ ActiveConnections() (int, error) })
		if !ok {
			return 0, nil
		}
		return c.ActiveConnections()
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
