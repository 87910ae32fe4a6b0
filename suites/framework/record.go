package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/census"
)

// RecordFigure adds a figure entry (reports/entry) for the current spec,
// stamped with the mode so the report sets modes side by side.
func (f *Framework) RecordFigure(fig entry.Figure) {
	fig.Mode = f.Mode
	if err := fig.Validate(); err != nil {
		// A figure the report would reject is a suite bug: fail loudly.
		ginkgo.Fail(fmt.Sprintf("figure %s: %v", fig.Name, err))
	}
	ginkgo.AddReportEntry(fig.EntryName(), fig)
}

// RecordProbe adds a probe entry describing what src tried.
func (f *Framework) RecordProbe(src Source, kind, target, service, expected, seen string, failed bool) {
	p := entry.Probe{
		Description: fmt.Sprintf("%s -> %s %s (%s)", src.Description, kind, target, service),
		Node:        src.Node,
		Service:     service,
		Expected:    expected,
		Seen:        seen,
		Failed:      failed,
	}
	ginkgo.AddReportEntry(entry.ProbeName, p, ginkgo.ReportEntryVisibilityFailureOrVerbose)
}

// proxierLogDump is how much of a node's proxier log a failed spec's
// dumps keep: a live switch's minutes at --v=2.
const proxierLogDump = 1 << 20

// DumpRules writes every node's proxier rules for a failed spec to
// <mode dir>/dumps/<spec id>/<node>.txt, where the report looks for them,
// and the node's proxier log beside them (<node>.proxier.log, which the
// report leaves out) where the provider can read it (ProxierLogs).
func (f *Framework) DumpRules(ctx context.Context, specText string) {
	dir := filepath.Join(f.ModeDir(), "dumps", entry.SpecID(specText))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		klog.ErrorS(err, "No rule dumps", "dir", dir)
		return
	}
	for _, n := range f.Cluster.Nodes() {
		var out strings.Builder
		for _, cmd := range census.Dumps(n.Mode) {
			b, err := f.Cluster.ExecOnNode(ctx, n.Name, cmd...)
			fmt.Fprintf(&out, "### %s\n%s\n", strings.Join(cmd, " "), b)
			if err != nil {
				fmt.Fprintf(&out, "### error: %v\n", err)
			}
		}
		path := filepath.Join(dir, n.Name+".txt")
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			klog.ErrorS(err, "Rule dump not written", "node", n.Name, "path", path)
		}
		if pl, ok := clusters.As[clusters.ProxierLogs](f.Cluster); ok {
			b, err := pl.ProxierLog(ctx, n.Name, proxierLogDump)
			if err != nil {
				b = []byte(fmt.Sprintf("(the proxier's log: %v)\n", err))
			}
			path := filepath.Join(dir, n.Name+".proxier.log")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				klog.ErrorS(err, "Proxier log not written", "node", n.Name, "path", path)
			}
		}
	}
}
