package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// journal records, in order, what the migration did to the kernel.
type journal struct{ steps []string }

// fakeMode is the new mode; it only writes to the journal.
type fakeMode struct {
	j    *journal
	name string
}

func (f *fakeMode) Name() string { return f.name }
func (f *fakeMode) Sync(_ context.Context, _ *state.View, c *state.Changes) (modes.Result, error) {
	step := "sync " + f.name
	if c.Full {
		step += " full"
	}
	f.j.steps = append(f.j.steps, step)
	return modes.Result{Full: c.Full}, nil
}
func (f *fakeMode) Cleanup(context.Context) error { return nil }
func (f *fakeMode) RequestFull()                  { f.j.steps = append(f.j.steps, "request full") }

func testMigrationHook(from, to string, cleanErr ...error) (*migration, *journal) {
	j := &journal{}
	m := &migration{
		cfg:  &config.Config{Mode: to, MigrateFrom: from},
		mode: &fakeMode{j: j, name: to},
		clean: func(_ context.Context, _ *config.Config, name string) error {
			j.steps = append(j.steps, "clean "+name)
			if len(cleanErr) > 0 {
				err := cleanErr[0]
				cleanErr = cleanErr[1:]
				return err
			}
			return nil
		},
	}
	return m, j
}

func TestMigrationRemovesThePreviousModeOnceAfterTheFirstSync(t *testing.T) {
	m, j := testMigrationHook(config.ModeIPTables, config.ModeNFTables)
	for range 3 {
		if err := m.AfterSync(context.Background(), &state.View{}, &state.Changes{}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"clean iptables"}; !slices.Equal(j.steps, want) {
		t.Errorf("steps over three syncs = %q, want %q", j.steps, want)
	}
}

func TestAFailedRemovalIsTriedAgainAfterTheNextSync(t *testing.T) {
	m, j := testMigrationHook(config.ModeNFTables, config.ModeIPTables, errors.New("nft: busy"))
	err := m.AfterSync(context.Background(), &state.View{}, &state.Changes{})
	if err == nil || !containsAll(err.Error(), "nftables", "iptables", "nft: busy") {
		t.Fatalf("err = %v, want both modes and the cause named", err)
	}
	_ = m.AfterSync(context.Background(), &state.View{}, &state.Changes{})
	_ = m.AfterSync(context.Background(), &state.View{}, &state.Changes{})
	if want := []string{"clean nftables", "clean nftables"}; !slices.Equal(j.steps, want) {
		t.Errorf("steps = %q, want a retry after the failure and nothing once done: %q", j.steps, want)
	}
}

func TestModesSharingIPTablesChainsAreRewrittenRightAfterTheRemoval(t *testing.T) {
	for _, c := range [][2]string{{config.ModeIPTables, config.ModeIPVS}, {config.ModeIPVS, config.ModeIPTables}} {
		m, j := testMigrationHook(c[0], c[1])
		if err := m.AfterSync(context.Background(), &state.View{}, &state.Changes{}); err != nil {
			t.Fatal(err)
		}
		want := []string{"clean " + c[0], "request full", "sync " + c[1] + " full"}
		if !slices.Equal(j.steps, want) {
			t.Errorf("%s -> %s: steps = %q, want %q", c[0], c[1], j.steps, want)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
