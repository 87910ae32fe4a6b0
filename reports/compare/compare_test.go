package compare

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/reports/run"
)

func load(t *testing.T, name string) *run.Run {
	t.Helper()
	r, err := run.Load(filepath.Join("..", "testdata", "runs", name))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCompareFindsFlippedSpecsRegressionsFirst(t *testing.T) {
	d, err := Runs(load(t, "before"), load(t, "after"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Pairs) != 3 || len(d.Flips) != 2 {
		t.Fatalf("pairs %v flips %+v, want 3 pairs and 2 flips", d.Pairs, d.Flips)
	}
	if f := d.Flips[0]; f.Pair.A != "iptables" || f.From != run.Passed || f.To != run.Failed || !strings.Contains(f.Reason, "connection refused") {
		t.Errorf("first flip %+v, want the iptables regression with its reason", f)
	}
	if f := d.Flips[1]; f.Pair.A != "nftables" || f.From != run.Failed || f.To != run.Passed {
		t.Errorf("second flip %+v, want the nftables fix", f)
	}
}

func TestCompareSaysHowFarFiguresMoved(t *testing.T) {
	d, err := Runs(load(t, "before"), load(t, "after"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var moved []Move
	for _, m := range d.Figures {
		if m.Moved {
			moved = append(moved, m)
		}
	}
	if len(moved) != 8 {
		t.Fatalf("%d moved, want 8 (iptables propagation and sync: 4 stats each)", len(moved))
	}
	for _, m := range moved {
		if m.Pair.A != "iptables" || math.Abs(m.Pct+33.3) > 0.1 {
			t.Errorf("moved %+v, want iptables at -33.3%%", m)
		}
	}
	if !d.Figures[len(d.Figures)-1].Moved && d.Figures[0].Moved != true {
		t.Error("moved figures must come first")
	}
	var buf bytes.Buffer
	if err := d.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"specs that flipped: 2", "passed -> failed", "figures that moved 10% or more: 8", "endpoint-propagation p99: 415 -> 277 ms (-33.3%)"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("text output lacks %q:\n%s", w, buf.String())
		}
	}
}

func TestComparePairsModes(t *testing.T) {
	before, filtered := load(t, "before"), load(t, "filtered")
	tests := []struct {
		name    string
		a, b    *run.Run
		opt     Options
		want    string
		wantErr string
	}{
		{"runs with the same modes pair by mode", before, before, Options{}, "iptables,nftables,ipvs", ""},
		{"mode A vs mode B of one run", before, before, Options{ModeA: "iptables", ModeB: "nftables"}, "iptables vs nftables", ""},
		{"a run with fewer modes pairs what it has", filtered, before, Options{}, "iptables", ""},
		{"an unknown mode is an error naming what exists", before, before, Options{ModeA: "ebpf", ModeB: "ipvs"}, "", `no mode "ebpf" (it has iptables, nftables, ipvs)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Runs(tt.a, tt.b, tt.opt)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range d.Pairs {
				got = append(got, p.String())
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("pairs %v, want %s", got, tt.want)
			}
		})
	}
	d, _ := Runs(before, before, Options{})
	if d.Changed() {
		t.Error("a run compared with itself changed")
	}
}

func TestCompareBenchRatiosOursOverUpstream(t *testing.T) {
	before := load(t, "before")
	after := load(t, "before")
	// ours's change p50 doubles in B: its ratio to upstream doubles.
	for i, r := range after.Bench.Rows {
		if r.Proxier == "ours" && r.Mode == "iptables" && r.Backend == "nft" && r.Services == 2000 {
			after.Bench.Rows[i].ChangeP50Ms *= 2
		}
	}
	d, err := Runs(before, after, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var moved []Ratio
	for _, r := range d.Ratios {
		if !math.IsNaN(r.Pct) && math.Abs(r.Pct) >= 10 {
			moved = append(moved, r)
		}
	}
	if len(moved) != 1 || moved[0].Figure != "change p50" || moved[0].Case != "iptables/nft" || math.Abs(moved[0].Pct-100) > 0.01 {
		t.Fatalf("moved ratios %+v, want iptables/nft change p50 at +100%%", moved)
	}
	if r := moved[0]; math.Abs(r.A.Ratio-116.0/147) > 0.001 || r.A.Ours != 116 {
		t.Errorf("baseline side %+v, want 116/147", r.A)
	}
	var buf bytes.Buffer
	if err := d.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "2000x5 iptables/nft change p50: 0.79 -> 1.58"; !strings.Contains(buf.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, buf.String())
	}
}
