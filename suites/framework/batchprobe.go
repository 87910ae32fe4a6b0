package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// Spread makes n requests from src to url, each on a new connection, one
// after another (netprobe spread).
func (f *Framework) Spread(ctx context.Context, src Source, url string, n int) (batch.Batch, error) {
	return f.runBatch(ctx, src, "-count", strconv.Itoa(n), "spread", url)
}

// Hold opens conns keep-alive connections from src to url and asks each
// again every 200 ms for d (netprobe hold). It blocks for d.
func (f *Framework) Hold(ctx context.Context, src Source, url string, conns int, d time.Duration) (batch.Batch, error) {
	return f.runBatch(ctx, src, "-count", strconv.Itoa(conns), "-for", d.String(), "hold", url)
}

// Load starts rate new connections a second from src to url for d
// (netprobe load). It blocks for d.
func (f *Framework) Load(ctx context.Context, src Source, url string, rate float64, d time.Duration) (batch.Batch, error) {
	return f.runBatch(ctx, src, "-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-for", d.String(), "load", url)
}

func (f *Framework) runBatch(ctx context.Context, src Source, args ...string) (batch.Batch, error) {
	var b batch.Batch
	cmd := append([]string{clusters.Probe, "-timeout", "2s"}, args...)
	out, err := src.exec(ctx, cmd...)
	what := fmt.Sprintf("%s: netprobe %s", src.Description, strings.Join(args, " "))
	if err != nil {
		return b, fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		return b, fmt.Errorf("%s: reading its output %.200q: %w", what, out, err)
	}
	return b, nil
}
