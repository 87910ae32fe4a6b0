package config

import (
	"fmt"
	"slices"

	"github.com/spf13/pflag"
)

// Our extensions to kube-proxy's configuration. KubeProxyConfiguration
// v1alpha1 has no field for them and the file is decoded strictly, so they
// are flags only, like --netns: they apply with or without --config and
// never appear in /configz or --write-config-to (a kube-proxy reading that
// file must not choke on them).

// DefaultConntrackWarnPercent is where operators put their conntrack alert
// (60-70% of nf_conntrack_max), well before "table full, dropping packet".
const DefaultConntrackWarnPercent = 70

// DefaultSyncBudgetPercent lets syncs take a tenth of the time: a
// minSyncPeriod of 1 s does the same for syncs of 100 ms, the cost it
// was chosen for; cheaper syncs then wait less (proxier/daemon's loop).
const DefaultSyncBudgetPercent = 10

func addExtensionFlags(fs *pflag.FlagSet, o *Options) {
	fs.IntVar(&o.SyncBudgetPercent, "sync-budget-percent", o.SyncBudgetPercent,
		"After a sync that changed rules, wait minSyncPeriod or, if less, what keeps syncing to this percentage of one CPU's time (9x the sync's CPU time at 10, counting the iptables or ipset processes it ran; its duration where that is less), so cheap syncs do not make every change wait minSyncPeriod. 0 always waits minSyncPeriod, as kube-proxy does. Ours, not kube-proxy's.")
	fs.IntVar(&o.ConntrackWarnPercent, "conntrack-usage-warn-percent", o.ConntrackWarnPercent,
		"Log a warning when the conntrack entries of the node exceed this percentage of nf_conntrack_max, and again when they fall back (0 disables). Ours, not kube-proxy's.")
	fs.StringVar(&o.MigrateFrom, "migrate-from", o.MigrateFrom,
		"Switch modes without a gap: the node still carries this mode's rules (iptables, nftables or ipvs; ours or kube-proxy's); program the new mode fully first and remove them only after its first successful sync. Ours, not kube-proxy's.")
}

// completeExtensions checks and copies our flags into cfg.
func (o *Options) completeExtensions(cfg *Config) error {
	if p := o.ConntrackWarnPercent; p < 0 || p > 100 {
		return fmt.Errorf("--conntrack-usage-warn-percent %d: must be between 1 and 100 (a percentage of nf_conntrack_max), or 0 to disable the warning", p)
	}
	cfg.ConntrackWarnPercent = o.ConntrackWarnPercent
	if p := o.SyncBudgetPercent; p < 0 || p > 99 {
		return fmt.Errorf("--sync-budget-percent %d: must be between 1 and 99 (the share of time syncs may take), or 0 to wait minSyncPeriod after every sync as kube-proxy does", p)
	}
	cfg.SyncBudgetPercent = o.SyncBudgetPercent
	if o.MigrateFrom == "" {
		return nil
	}
	known := []string{ModeIPTables, ModeNFTables, ModeIPVS}
	switch {
	case !slices.Contains(known, o.MigrateFrom):
		return fmt.Errorf("--migrate-from %q: unknown mode; use the mode the node ran before: iptables, nftables or ipvs", o.MigrateFrom)
	case o.MigrateFrom == cfg.Mode:
		return fmt.Errorf("--migrate-from %q is the mode this proxier runs in (%s); a restart in the same mode needs no migration: drop the flag", o.MigrateFrom, cfg.Mode)
	case o.Cleanup:
		return fmt.Errorf("--migrate-from %q with --cleanup: --cleanup already removes every mode's rules; use one or the other", o.MigrateFrom)
	}
	cfg.MigrateFrom = o.MigrateFrom
	return nil
}
