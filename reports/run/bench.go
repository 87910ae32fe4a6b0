package run

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Bench is bench.json: one row per mode x backend x proxier x scale.
type Bench struct {
	Rows []BenchRow `json:"rows"`
}

// BenchRow is one benchmark measurement at one scale.
type BenchRow struct {
	Mode    string `json:"mode"`
	Backend string `json:"backend,omitempty"` // iptables: "nft" or "legacy"
	Proxier string `json:"proxier,omitempty"`
	// Scale: how many Services and endpoints per Service.
	Services         int     `json:"services"`
	Endpoints        int     `json:"endpoints,omitempty"`
	FirstSyncSeconds float64 `json:"firstSyncSeconds"`
	ChangeP50Ms      float64 `json:"changeP50Ms"`
	ChangeP99Ms      float64 `json:"changeP99Ms"`
	RSSMB            float64 `json:"rssMB"`
	CPUSeconds       float64 `json:"cpuSeconds"`
	Rules            int     `json:"rules"`
}

// Series names the line a row belongs to in a chart.
func (r BenchRow) Series() string {
	s := r.Mode
	if r.Backend != "" {
		s += "/" + r.Backend
	}
	if r.Proxier != "" {
		s += " (" + r.Proxier + ")"
	}
	return s
}

// Scale names the scale of a row, e.g. "4000 svc x 10 ep".
func (r BenchRow) Scale() string {
	if r.Endpoints > 0 {
		return fmt.Sprintf("%d svc x %d ep", r.Services, r.Endpoints)
	}
	return fmt.Sprintf("%d svc", r.Services)
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
		for _, v := range []float64{r.FirstSyncSeconds, r.ChangeP50Ms, r.ChangeP99Ms, r.RSSMB, r.CPUSeconds} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, fmt.Errorf("%s: rows[%d] (%s, %s): value %v is not a finite non-negative number", path, i, r.Series(), r.Scale(), v)
			}
		}
	}
	return &b, nil
}
