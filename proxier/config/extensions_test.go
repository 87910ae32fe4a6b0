package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOurExtensionFlagsApplyWithAndWithoutAConfigFile(t *testing.T) {
	for _, args := range [][]string{
		{"--proxy-mode=nftables", "--migrate-from=iptables", "--conntrack-usage-warn-percent=60", "--sync-budget-percent=0"},
		{"--config=testdata/nftables.json", "--migrate-from=iptables", "--conntrack-usage-warn-percent=60", "--sync-budget-percent=0"},
	} {
		cfg := mustComplete(t, args...)
		if cfg.Mode != ModeNFTables || cfg.MigrateFrom != ModeIPTables || cfg.ConntrackWarnPercent != 60 || cfg.SyncBudgetPercent != 0 {
			t.Errorf("%v: mode %q, migrateFrom %q, warn %d, sync budget %d; want nftables, iptables, 60, 0",
				args, cfg.Mode, cfg.MigrateFrom, cfg.ConntrackWarnPercent, cfg.SyncBudgetPercent)
		}
		raw, err := json.Marshal(cfg.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "migrate") || strings.Contains(string(raw), "Percent") {
			t.Errorf("%v: the kube-proxy config (configz, --write-config-to) carries our flag", args)
		}
	}
	if cfg := mustComplete(t); cfg.ConntrackWarnPercent != DefaultConntrackWarnPercent || cfg.MigrateFrom != "" || cfg.SyncBudgetPercent != DefaultSyncBudgetPercent {
		t.Errorf("defaults: warn %d, migrateFrom %q, sync budget %d; want %d, none, %d", cfg.ConntrackWarnPercent, cfg.MigrateFrom, cfg.SyncBudgetPercent, DefaultConntrackWarnPercent, DefaultSyncBudgetPercent)
	}
}

func TestBadExtensionFlagsAreRefusedNamingTheFlagAndTheFix(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--conntrack-usage-warn-percent=150"}, []string{"--conntrack-usage-warn-percent 150", "between 1 and 100", "0 to disable"}},
		{[]string{"--conntrack-usage-warn-percent=-1"}, []string{"--conntrack-usage-warn-percent -1"}},
		{[]string{"--sync-budget-percent=100"}, []string{"--sync-budget-percent 100", "between 1 and 99", "0 to wait minSyncPeriod"}},
		{[]string{"--migrate-from=userspace"}, []string{`--migrate-from "userspace"`, "iptables, nftables or ipvs"}},
		{[]string{"--proxy-mode=nftables", "--migrate-from=nftables"}, []string{`--migrate-from "nftables"`, "drop the flag"}},
		{[]string{"--migrate-from=nftables", "--cleanup"}, []string{"--cleanup", "one or the other"}},
	} {
		_, err := complete(t, c.args...)
		if err == nil {
			t.Errorf("%v: accepted", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", c.args, err, w)
			}
		}
	}
}
