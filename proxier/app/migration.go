package app

import (
	"context"
	"fmt"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/daemon"
	"github.com/proxyproof/proxyproof/proxier/modes"
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
// Why an explicit flag and not detecting leftovers at start-up: the same
// rules are what a second proxier, still running (a half-finished
// rollout, a rollback), needs; removing them on a guess would break that
// node. The operator says which mode the node is leaving.
type migration struct {
	cfg  *config.Config
	mode modes.Mode
	// clean removes the previous mode's rules; cleanupMode outside tests.
	clean func(ctx context.Context, cfg *config.Config, name string) error
	done  bool
	start time.Time
}

var _ daemon.Hook = &migration{}

func newMigration(cfg *config.Config, mode modes.Mode) *migration {
	klog.InfoS("Migrating: the previous mode's rules stay until this mode's first successful sync",
		"from", cfg.MigrateFrom, "to", cfg.Mode)
	return &migration{cfg: cfg, mode: mode, clean: cleanupMode, start: time.Now()}
}

func (m *migration) Name() string { return "migrate-from-" + m.cfg.MigrateFrom }

// AfterSync removes the previous mode's rules once. A failed removal is
// tried again after the next sync: the rules left are harmless, as above.
func (m *migration) AfterSync(ctx context.Context, view *state.View, _ *state.Changes) error {
	if m.done {
		return nil
	}
	synced := time.Now()
	if err := m.clean(ctx, m.cfg, m.cfg.MigrateFrom); err != nil {
		return fmt.Errorf("remove the rules of mode %s after migrating to %s: %w", m.cfg.MigrateFrom, m.cfg.Mode, err)
	}
	if sharesIPTablesChains(m.cfg.MigrateFrom, m.cfg.Mode) {
		// iptables and ipvs modes both own KUBE-SERVICES, KUBE-POSTROUTING,
		// ...: the previous mode's cleanup just deleted ours too, so write
		// them again at once rather than at the next sync.
		if r, ok := m.mode.(fullRequester); ok {
			r.RequestFull()
		}
		if _, err := m.mode.Sync(ctx, view, &state.Changes{Full: true}); err != nil {
			return fmt.Errorf("rewrite the %s rules shared with mode %s after removing them: %w", m.cfg.Mode, m.cfg.MigrateFrom, err)
		}
	}
	m.done = true
	klog.InfoS("Migrated: removed the previous mode's rules after this mode's first sync",
		"from", m.cfg.MigrateFrom, "to", m.cfg.Mode, "removal", time.Since(synced), "sinceStart", time.Since(m.start))
	return nil
}

// fullRequester is a mode that may otherwise turn a Full sync into a
// partial one (iptables, within its full-sync period).
type fullRequester interface{ RequestFull() }

// sharesIPTablesChains says whether two modes write the same iptables
// chains (kube-proxy's IPVS mode uses iptables for masquerade and filters).
func sharesIPTablesChains(a, b string) bool {
	return (a == config.ModeIPTables && b == config.ModeIPVS) || (a == config.ModeIPVS && b == config.ModeIPTables)
}
