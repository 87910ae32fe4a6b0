package entry

import (
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestSpecIDIsAReadableUniqueDirectoryName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9-]+$`)
	tests := []struct{ name, text, prefix string }{
		{"plain text becomes a lowercase slug", "ClusterIP reaches every backend over TCP", "clusterip-reaches-every-backend-over-tcp-"},
		{"punctuation collapses to single dashes", "NodePort: answers (on node-2) -> 10.96.0.10:80", "nodeport-answers-on-node-2-10-96-0-10-80-"},
		{"text without letters is only a hash", "->:()", ""},
		{"a long text is cut", strings.Repeat("very long spec name ", 20), "very-long-spec-name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := SpecID(tt.text)
			if !valid.MatchString(id) || !strings.HasPrefix(id, tt.prefix) || len(id) > 70 {
				t.Errorf("SpecID(%q) = %q, want a slug starting %q of at most 70 chars", tt.text, id, tt.prefix)
			}
		})
	}
	if SpecID("a b") == SpecID("a-b") {
		t.Errorf("texts with one slug must still get different ids: both %q", SpecID("a b"))
	}
}

func TestPercentileIsNearestRankSoFewSamplesReportTheWorstSeen(t *testing.T) {
	sorted := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tt := range []struct {
		p    float64
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {0, 1}} {
		if got := Percentile(sorted, tt.p); got != tt.want {
			t.Errorf("p%v of 1..10 = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestSummaryOrdersStatsFromMinToMaxThenMean(t *testing.T) {
	f := Figure{Name: "x", Unit: "ms", Percentiles: map[string]float64{"max": 9, "p99": 8, "p50": 2, "min": 1, "p99.9": 8.5, "mean": 3}}
	stats, n := f.Summary()
	var labels []string
	for _, s := range stats {
		labels = append(labels, s.Label)
	}
	if got, want := strings.Join(labels, ","), "min,p50,p99,p99.9,max,mean"; got != want || n != 0 {
		t.Errorf("labels %s (count %d), want %s (count 0)", got, n, want)
	}
	samples := Figure{Name: "x", Unit: "ms", Values: []float64{4, 1, 3, 2}}
	stats, n = samples.Summary()
	if n != 4 || stats[0] != (Stat{"min", 1}) || stats[len(stats)-1] != (Stat{"mean", 2.5}) {
		t.Errorf("samples summary = %v (count %d), want min 1 ... mean 2.5 of 4", stats, n)
	}
}

func TestValidateRejectsFiguresTheReportCannotDrawHonestly(t *testing.T) {
	tests := []struct {
		name string
		f    Figure
		want string
	}{
		{"a figure needs a name", Figure{Unit: "ms", Values: []float64{1}}, "no name"},
		{"a figure needs a unit", Figure{Name: "x", Values: []float64{1}}, "no unit"},
		{"a figure needs data", Figure{Name: "x", Unit: "ms"}, "exactly one"},
		{"a figure carries one kind of data", Figure{Name: "x", Unit: "ms", Values: []float64{1}, Points: []Point{{1, 2}}}, "exactly one"},
		{"NaN is not a measurement", Figure{Name: "x", Unit: "ms", Values: []float64{math.NaN()}}, "NaN"},
		{"percentile keys are min, max, mean or pNN", Figure{Name: "x", Unit: "ms", Percentiles: map[string]float64{"median": 1}}, "median"},
		{"a good series passes", Figure{Name: "x", Unit: "entries", Points: []Point{{0, 1}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestProbeDecodesFromAStringOrAnObject(t *testing.T) {
	var p Probe
	if err := json.Unmarshal([]byte(`"pod a on node-1 -> 10.96.0.10:80 (default/web)"`), &p); err != nil || p.Description != "pod a on node-1 -> 10.96.0.10:80 (default/web)" {
		t.Errorf("string probe = %+v, %v", p, err)
	}
	if err := json.Unmarshal([]byte(`{"description":"d","node":"node-2","seen":"refused","failed":true}`), &p); err != nil || p.Node != "node-2" || !p.Failed || p.Seen != "refused" {
		t.Errorf("object probe = %+v, %v", p, err)
	}
	if err := json.Unmarshal([]byte(`42`), &p); err == nil {
		t.Errorf("a number decoded as a probe: %+v", p)
	}
}
