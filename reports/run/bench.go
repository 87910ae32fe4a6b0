package run

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Bench is bench.json, written by the side-by-side bench (suites/bench):
// one row per proxier x mode x backend x scale. It is defined here, once,
// because the bench writes it and the report reads it.
type Bench struct {
	Started  time.Time     `json:"started"`
	Host     string        `json:"host"`
	Note     string        `json:"note"`
	Settings BenchSettings `json:"settings"`
	Rows     []BenchRow    `json:"rows"`
}

// BenchSettings are the knobs a reader needs to compare two runs.
type BenchSettings struct {
	Changes          int     `json:"changes"`
	IPVSChanges      int     `json:"ipvs_changes,omitempty"`
	BurstEndpoints   int     `json:"burst_endpoints"`
	BurstServices    int     `json:"burst_services"`
	Connections      int     `json:"connections"`
	FirstSyncTimeout float64 `json:"first_sync_timeout_s"`
	MinSyncPeriod    float64 `json:"min_sync_period_s"`
}

// BenchRow is one proxier x mode x backend x scale. Durations are plain
// numbers in the unit their name says; zero means not measured.
type BenchRow struct {
	Mode    string `json:"mode"`
	Backend string `json:"backend"` // iptables: "nft" or "legacy"
	Proxier string `json:"proxier"`
	// Scale: how many Services and endpoints per Service.
	Services  int `json:"services"`
	Endpoints int `json:"endpoints"`

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
	WriteP99Ms float64 `json:"write_p99_ms"`
	// AfterWrite* time each change from its API write returning to the
	// kernel: the watch, the proxier and the kernel, without etcd's
	// write tail.
	AfterWriteP50Ms float64 `json:"after_write_p50_ms"`
	AfterWriteP99Ms float64 `json:"after_write_p99_ms"`
	BurstS          float64 `json:"burst_s"`
	RSSMB           float64 `json:"rss_mb"`
	CPUS            float64 `json:"cpu_s"`
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

// Case names the kernel programming flavour: "iptables/nft", "nftables".
func (r BenchRow) Case() string {
	if r.Backend == "" {
		return r.Mode
	}
	return r.Mode + "/" + r.Backend
}

// Series names the line a row belongs to in a chart: its case and
// proxier, "(VM)" when measured in the kernel VM.
func (r BenchRow) Series() string {
	s := r.Case()
	if r.VM {
		s += " (VM)"
	}
	if r.Proxier != "" {
		s += ", " + r.Proxier
	}
	return s
}

// Scale names the scale of a row, e.g. "10000x10".
func (r BenchRow) Scale() string {
	return fmt.Sprintf("%dx%d", r.Services, r.Endpoints)
}

// LoadBench reads bench.json; a run without one returns nil and no error.
func LoadBench(dir string) (*Bench, error) {
	path := filepath.Join(dir, BenchFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var b Bench
	if err := readJSON(path, &b); err != nil {
		return nil, err
	}
	for i, r := range b.Rows {
		if r.Mode == "" {
			return nil, fmt.Errorf("%s: rows[%d] has no mode", path, i)
		}
		for _, m := range BenchMetrics {
			if v := m.Get(r); math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, fmt.Errorf("%s: rows[%d] (%s, %s): %s %v is not a finite non-negative number", path, i, r.Series(), r.Scale(), m.Name, v)
			}
		}
	}
	return &b, nil
}
