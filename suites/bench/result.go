package bench

import (
	"bytes"
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

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
	"github.com/proxyproof/proxyproof/reports/html"
	reportrun "github.com/proxyproof/proxyproof/reports/run"
)

// Row is one proxier x mode x backend x scale; Report is bench.json.
// Both are the report's types (reports/run), which reads what we write.
type (
	Row      = reportrun.BenchRow
	Report   = reportrun.Bench
	Settings = reportrun.BenchSettings
)

// writeRun writes the run directory: bench.json, a run.json naming the
// run, and report.html with the figures as charts. It runs after every
// row, so a bench cut short still leaves a readable report.
func writeRun(dir string, rep *Report, command string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, reportrun.BenchFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	meta := reportrun.Meta{
		Name: "bench", Provider: "local control plane", Kernel: reportrun.HostKernel(), Command: command,
		KubernetesVersion: controlplane.DefaultVersion,
		Proxier:           reportrun.Proxier{Name: "ours vs upstream kube-proxy"}, Start: rep.Started, End: time.Now().UTC(),
	}
	if b, err = json.MarshalIndent(meta, "", "  "); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, reportrun.MetaFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	r, err := reportrun.Load(dir)
	if err != nil {
		return fmt.Errorf("reading back the run directory for its report: %w", err)
	}
	var page bytes.Buffer
	if err := html.Render(&page, r); err != nil {
		return fmt.Errorf("report of %s: %w", dir, err)
	}
	return os.WriteFile(filepath.Join(dir, reportrun.ReportFile), page.Bytes(), 0o644)
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

// WriteTable prints, per scale and mode, each metric for ours and for
// upstream and the ratio ours/upstream (below 1 = ours is better).
func WriteTable(w io.Writer, rows []Row, ours, upstream string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := []string{"scale", "mode", "metric", ours, upstream, "ours/upstream"}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	vm := false
	groups, _ := reportrun.GroupBench(rows)
	for _, g := range groups {
		vm = vm || strings.HasSuffix(g.Case, " (VM)")
		if skip := g.Skipped(); skip != "" {
			// Text after the last tab is no cell: a long reason does
			// not widen the columns.
			fmt.Fprintf(tw, "%s\t%s\t  %s\n", g.Scale, g.Case, skip)
			continue
		}
		for _, m := range reportrun.BenchMetrics {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", g.Scale, g.Case, m.Name,
				g.Cell(ours, m), g.Cell(upstream, m), g.Ratio(ours, upstream, m))
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

// WriteReasons lists, under the table, why each row that was measured did
// not finish or lacks a figure: the bench's account and the proxier's
// last errors, indented under the row's name.
func WriteReasons(w io.Writer, rows []Row) error {
	for _, r := range rows {
		if r.Reason == "" || r.NotMeasured {
			continue
		}
		what := "did not finish"
		if !r.DidNotFinish {
			what = "finished, but"
		}
		reason := strings.ReplaceAll(r.Reason, "\n", "\n    ")
		if _, err := fmt.Fprintf(w, "\n%s %s %s %s: %s\n", r.Proxier, r.Case(), r.Scale(), what, reason); err != nil {
			return err
		}
	}
	return nil
}
