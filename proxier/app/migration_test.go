package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/modes/ipvs"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// cleanCall is one removal the migration asked for.
type cleanCall struct {
	mode string
	keep map[string][]string
}

// testMigrationHook returns a migration whose removals are recorded and
// fail with cleanErr in turn.
func testMigrationHook(from, to string, cleanErr ...error) (*migration, *[]cleanCall) {
	var calls []cleanCall
	m := &migration{
		cfg:    &config.Config{Mode: to, MigrateFrom: from},
		start:  time.Now(),
		active: func(context.Context, *config.Config, string) (int, error) { return 0, nil },
		bound:  drainBound,
		clean: func(_ context.Context, _ *config.Config, name string, keep map[string][]string) error {
			calls = append(calls, cleanCall{name, keep})
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

func afterSync(m *migration) error {
	return m.AfterSync(context.Background(), &state.View{}, &state.Changes{})
}

func TestMigrationRemovesThePreviousModeOnceAfterTheFirstSync(t *testing.T) {
	m, calls := testMigrationHook(config.ModeIPTables, config.ModeNFTables)
	if len(*calls) != 0 {
		t.Fatal("the previous mode was removed before any sync")
	}
	for range 3 {
		if err := afterSync(m); err != nil {
			t.Fatal(err)
		}
	}
	if want := []cleanCall{{mode: config.ModeIPTables}}; !cmp.Equal(*calls, want, cmp.AllowUnexported(cleanCall{})) {
		t.Errorf("removals over three syncs = %+v, want %+v", *calls, want)
	}
}

func TestLeavingIPVSWaitsForItsEstablishedConnectionsToEndAtMostTheBound(t *testing.T) {
	m, calls := testMigrationHook(config.ModeIPVS, config.ModeIPTables)
	carried := []int{3, 1, 0}
	m.active = func(_ context.Context, _ *config.Config, name string) (int, error) {
		if name != config.ModeIPVS {
			t.Fatalf("asked mode %s for its connections, want ipvs", name)
		}
		n := carried[0]
		carried = carried[1:]
		return n, nil
	}
	for i, wantRemoved := range []int{0, 0, 1} {
		if err := afterSync(m); err != nil {
			t.Fatal(err)
		}
		if len(*calls) != wantRemoved {
			t.Fatalf("after sync %d: %d removals, want %d (connections carried until then: 3, 1, 0)", i+1, len(*calls), wantRemoved)
		}
	}

	m, calls = testMigrationHook(config.ModeIPVS, config.ModeNFTables)
	m.active = func(context.Context, *config.Config, string) (int, error) { return 5, nil }
	m.bound = 0 // the bound has passed: a connection held longer is not waited for
	if err := afterSync(m); err != nil || len(*calls) != 1 {
		t.Fatalf("past the bound: err %v, %d removals; want the removal", err, len(*calls))
	}
}

func TestAFailedRemovalIsTriedAgainAfterTheNextSync(t *testing.T) {
	m, calls := testMigrationHook(config.ModeNFTables, config.ModeIPTables, errors.New("nft: busy"))
	err := afterSync(m)
	for _, want := range []string{"nftables", "iptables", "nft: busy"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want it to name %q", err, want)
		}
	}
	_, _ = afterSync(m), afterSync(m)
	if len(*calls) != 2 {
		t.Errorf("removals = %+v, want a retry after the failure and nothing once done", *calls)
	}
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
		m, calls := testMigrationHook(c.from, c.to)
		if err := afterSync(m); err != nil {
			t.Fatal(err)
		}
		if got := (*calls)[0].keep; !cmp.Equal(got, c.keep) {
			t.Errorf("%s -> %s: cleanup keeps %v, want %v", c.from, c.to, got, c.keep)
		}
		if c.keep != nil && !slices.Contains(c.keep["nat"], "KUBE-MARK-MASQ") {
			t.Errorf("%s -> %s: KUBE-MARK-MASQ, which both modes jump to, is not kept", c.from, c.to)
		}
	}
}
