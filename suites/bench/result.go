package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one proxier x mode x backend x scale. Durations are plain
// numbers in the unit their name says; zero means not measured.
type Row struct {
	Mode      string `json:"mode"`
	Backend   string `json:"backend"`
	Proxier   string `json:"proxier"`
	Services  int    `json:"services"`
	Endpoints int    `json:"endpoints"`

	FirstSyncS float64 `json:"first_sync_s"`
	// Changes is how many one-endpoint changes were seen in the kernel.
	Changes     int     `json:"changes"`
	ChangeP50Ms float64 `json:"change_p50_ms"`
	ChangeP99Ms float64 `json:"change_p99_ms"`
	// ProbeMs is the median time one kernel read took: the resolution of
	// the change figures.
	ProbeMs float64 `json:"probe_ms"`
	// WriteP50Ms is the median time the API write of a change took (the
	// EndpointSlice update, etcd included): a floor under the change
	// figures that no proxier can go below.
	WriteP50Ms float64 `json:"write_p50_ms"`
	BurstS     float64 `json:"burst_s"`
	RSSMB      float64 `json:"rss_mb"`
	CPUS       float64 `json:"cpu_s"`
	// Rules are rules in the kernel (iptables: -A lines of every table;
	// nftables: rules of table ip kube-proxy; ipvs: virtual servers);
	// Elements its set and map elements (ipvs: real servers).
	Rules    int `json:"rules"`
	Elements int `json:"elements"`
	// Connect* time connect() from the client namespace to a ClusterIP.
	Connections   int     `json:"connections"`
	ConnectErrors int     `json:"connect_errors"`
	ConnectP50Us  float64 `json:"connect_p50_us"`
	ConnectP99Us  float64 `json:"connect_p99_us"`

	// VM marks a row measured in the kernel VM (IPVS here): its figures
	// compare with other VM rows only.
	VM bool `json:"vm,omitempty"`

	DidNotFinish bool `json:"did_not_finish"`
	// NotMeasured marks a row the bench could not run here (Reason says why).
	NotMeasured bool   `json:"not_measured"`
	Reason      string `json:"reason"`
}

// Report is bench.json.
type Report struct {
	Started  time.Time `json:"started"`
	Host     string    `json:"host"`
	Note     string    `json:"note"`
	Settings Settings  `json:"settings"`
	Rows     []Row     `json:"rows"`
}

// Settings are the knobs a reader needs to compare two runs.
type Settings struct {
	Changes          int     `json:"changes"`
	IPVSChanges      int     `json:"ipvs_changes,omitempty"`
	BurstEndpoints   int     `json:"burst_endpoints"`
	BurstServices    int     `json:"burst_services"`
	Connections      int     `json:"connections"`
	FirstSyncTimeout float64 `json:"first_sync_timeout_s"`
	MinSyncPeriod    float64 `json:"min_sync_period_s"`
}

func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.json"), append(b, '\n'), 0o644)
}

// ReadReport reads a bench.json.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortedCopy(v []float64) []float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s
}

// metric is one column of the table.
type metric struct {
	name string
	get  func(Row) float64
	unit string
}

var metrics = []metric{
	{"first sync", func(r Row) float64 { return r.FirstSyncS }, "s"},
	{"change p50", func(r Row) float64 { return r.ChangeP50Ms }, "ms"},
	{"change p99", func(r Row) float64 { return r.ChangeP99Ms }, "ms"},
	{"api write p50", func(r Row) float64 { return r.WriteP50Ms }, "ms"},
	{"burst", func(r Row) float64 { return r.BurstS }, "s"},
	{"rss", func(r Row) float64 { return r.RSSMB }, "MB"},
	{"cpu", func(r Row) float64 { return r.CPUS }, "s"},
	{"rules", func(r Row) float64 { return float64(r.Rules + r.Elements) }, ""},
	{"connect p50", func(r Row) float64 { return r.ConnectP50Us }, "us"},
	{"connect p99", func(r Row) float64 { return r.ConnectP99Us }, "us"},
}

// WriteTable prints, per scale and mode, each metric for ours and for
// upstream and the ratio ours/upstream (below 1 = ours is better).
func WriteTable(w io.Writer, rows []Row, ours, upstream string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := []string{"scale", "mode", "metric", ours, upstream, "ours/upstream"}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	type key struct{ scale, mode string }
	var keys []key
	byKey := map[key]map[string]Row{}
	vm := false
	for _, r := range rows {
		k := key{fmt.Sprintf("%dx%d", r.Services, r.Endpoints), Case{r.Mode, r.Backend}.String()}
		if r.VM {
			k.mode += " (VM)"
			vm = true
		}
		if byKey[k] == nil {
			byKey[k] = map[string]Row{}
			keys = append(keys, k)
		}
		byKey[k][r.Proxier] = r
	}
	for _, k := range keys {
		a, okA := byKey[k][ours]
		b, okB := byKey[k][upstream]
		if skip := notMeasured(a, okA, b, okB); skip != "" {
			// Text after the last tab is no cell: a long reason does
			// not widen the columns.
			fmt.Fprintf(tw, "%s\t%s\t  %s\n", k.scale, k.mode, skip)
			continue
		}
		for _, m := range metrics {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", k.scale, k.mode, m.name,
				cell(a, okA, m), cell(b, okB, m), ratio(a, okA, b, okB, m))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if vm {
		_, err := fmt.Fprintf(w, "\n(VM): %s\n", VMNote)
		return err
	}
	return nil
}

func notMeasured(a Row, okA bool, b Row, okB bool) string {
	if (!okA || a.NotMeasured) && (!okB || b.NotMeasured) {
		if okA && a.Reason != "" {
			return a.Reason
		}
		return b.Reason
	}
	return ""
}

func cell(r Row, ok bool, m metric) string {
	switch {
	case !ok:
		return "-"
	case r.NotMeasured:
		return "not measured"
	case r.DidNotFinish && m.get(r) == 0:
		return "did not finish"
	}
	v := m.get(r)
	if v == 0 {
		return "-"
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s", num(v), m.unit))
}

func ratio(a Row, okA bool, b Row, okB bool, m metric) string {
	if !okA || !okB {
		return "-"
	}
	va, vb := m.get(a), m.get(b)
	switch {
	case va > 0 && vb > 0:
		return fmt.Sprintf("%.2f", va/vb)
	case va > 0 && b.DidNotFinish:
		return "upstream did not finish"
	case vb > 0 && a.DidNotFinish:
		return "ours did not finish"
	}
	return "-"
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
