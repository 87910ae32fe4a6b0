package html

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"

	"github.com/proxyproof/proxyproof/reports/run"
)

// renderWith renders the "before" fixture with the propagation figure's
// samples replaced per mode, and returns that figure's element.
func renderWith(t *testing.T, values map[string][]float64) *xhtml.Node {
	t.Helper()
	r, err := run.Load(filepath.Join(testdata, "before"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, set := range r.Figures {
		if set.Name != "endpoint-propagation" {
			continue
		}
		for i, mf := range set.ByMode {
			if v, ok := values[mf.Mode]; ok {
				set.ByMode[i].Figure.Values = v
				found = true
			}
		}
	}
	if !found {
		t.Fatal("fixture has no endpoint-propagation figure with raw values")
	}
	var buf bytes.Buffer
	if err := Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := xhtml.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range find(doc, "div", "figure") {
		if attr(f, "data-figure") == "endpoint-propagation" {
			return f
		}
	}
	t.Fatal("endpoint-propagation not drawn")
	return nil
}

// bars maps "series group" to the bar's value in a figure's chart.
func bars(f *xhtml.Node) map[string]string {
	out := map[string]string{}
	for _, b := range find(f, "rect", "bar") {
		out[attr(b, "data-series")+" "+attr(b, "data-group")] = attr(b, "data-value")
	}
	return out
}

func tableRow(t *testing.T, f *xhtml.Node, mode string) map[string]string {
	t.Helper()
	rows := find(find(f, "table")[0], "tr")
	var head []string
	for _, th := range find(rows[0], "th") {
		head = append(head, text(th))
	}
	for _, tr := range rows[1:] {
		cells := find(tr, "td")
		if text(cells[0]) != mode {
			continue
		}
		out := map[string]string{}
		for i, td := range cells {
			out[head[i]] = text(td)
		}
		return out
	}
	t.Fatalf("no table row for %s", mode)
	return nil
}

func TestAFigureFromFewSamplesShowsTheValuesNotPercentiles(t *testing.T) {
	two := []float64{812, 1036}
	nine := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name      string
		values    map[string][]float64
		note      string            // "" : no note
		wantBars  map[string]string // "series group" -> value
		wantNoBar []string
		row       map[string]string // iptables' table cells
	}{
		{"two samples in every mode are drawn as the two values",
			map[string][]float64{"iptables": two, "nftables": two, "ipvs": two},
			"N=2: values shown, percentiles need at least 10",
			map[string]string{"iptables #1": "812", "iptables #2": "1036", "ipvs #2": "1036"},
			[]string{"iptables p90", "iptables p50", "iptables max"},
			map[string]string{"n": "2", "values": "812 1036", "max": "1036"}},
		{"nine samples are still too few",
			map[string][]float64{"iptables": nine, "nftables": nine, "ipvs": nine},
			"N=9: values shown, percentiles need at least 10",
			map[string]string{"iptables #9": "9"},
			[]string{"iptables p99"},
			map[string]string{"n": "9", "values": "1 2 3 4 5 6 7 8 9"}},
		{"ten samples get percentile bars and no note",
			map[string][]float64{"iptables": ten, "nftables": ten, "ipvs": ten},
			"",
			map[string]string{"iptables p50": "5", "iptables p90": "9", "iptables max": "10"},
			[]string{"iptables #1"},
			map[string]string{"n": "10", "p90": "9"}},
		{"one mode with two samples among modes with forty keeps only its max bar",
			map[string][]float64{"iptables": two},
			"iptables N=2: values in the table, percentiles need at least 10",
			map[string]string{"iptables max": "1036"},
			[]string{"iptables p50", "iptables p90", "iptables p99"},
			map[string]string{"n": "2", "p90": "—", "values": "812 1036"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := renderWith(t, tt.values)
			var notes []string
			for _, p := range find(f, "p", "few-samples") {
				notes = append(notes, text(p))
			}
			if want := []string{tt.note}; tt.note == "" && len(notes) > 0 || tt.note != "" && !slices.Equal(notes, want) {
				t.Errorf("notes %q, want %q", notes, tt.note)
			}
			got := bars(f)
			for k, v := range tt.wantBars {
				if got[k] != v {
					t.Errorf("bar %q = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tt.wantNoBar {
				if _, ok := got[k]; ok {
					t.Errorf("bar %q drawn, want none", k)
				}
			}
			row := tableRow(t, f, "iptables")
			for k, v := range tt.row {
				if row[k] != v {
					t.Errorf("table %q = %q, want %q (row %v)", k, row[k], v, row)
				}
			}
		})
	}
}

func TestAMissingPercentileBarSaysHowFewSamplesThereWere(t *testing.T) {
	f := renderWith(t, map[string][]float64{"iptables": {812, 1036}})
	var marks []string
	for _, m := range find(f, "text", "mark") {
		if attr(m, "data-series") == "iptables" {
			marks = append(marks, attr(m, "data-group")+" "+text(m))
		}
	}
	if want := "p50 N=2,p90 N=2,p99 N=2"; strings.Join(marks, ",") != want {
		t.Errorf("iptables marks %q, want %q", marks, want)
	}
}
