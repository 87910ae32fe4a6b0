package framework

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// batchTimeout bounds one request of a batch: a kernel-VM node (TCG) on a
// busy machine takes over a second for what a namespace node does in
// milliseconds, and a request cut short there is no proxier's failure.
const batchTimeout = 5 * time.Second

// Spread makes n requests from src to url, each on a new connection, one
// after another (netprobe spread).
func (f *Framework) Spread(ctx context.Context, src Source, url string, n int) (batch.Batch, error) {
	return f.runBatch(ctx, src, "-count", strconv.Itoa(n), "spread", url)
}

// SpreadFrom is Spread with request i from local port port+i (netprobe
// -source-port), each closed with a reset: a second SpreadFrom repeats
// every source address and port, the key of a hashing scheduler.
func (f *Framework) SpreadFrom(ctx context.Context, src Source, url string, n, port int) (batch.Batch, error) {
	return f.runBatch(ctx, src, "-count", strconv.Itoa(n), "-source-port", strconv.Itoa(port), "spread", url)
}

// Hold opens conns keep-alive connections from src to url and asks each
// again every 200 ms for d (netprobe hold). It blocks until then. Files
// (paths where src runs) let a spec synchronise with it: the probe
// creates files.Ready once every connection is open (HoldReady waits for
// it) and ends early once files.Stop exists (StopHold).
func (f *Framework) Hold(ctx context.Context, src Source, url string, conns int, d time.Duration, files HoldFiles) (batch.Batch, error) {
	args := []string{"-count", strconv.Itoa(conns), "-for", d.String()}
	if files.Ready != "" {
		args = append(args, "-ready-file", files.Ready, "-stop-file", files.Stop)
	}
	return f.runBatch(ctx, src, append(args, "hold", url)...)
}

// HoldFiles are the files a Hold signals through; zero for none.
type HoldFiles struct{ Ready, Stop string }

// NewHoldFiles names a pair under /run (a tmpfs on every local node,
// kernel VMs included) unique to name and this moment.
func NewHoldFiles(name string) HoldFiles {
	// /tmp: the one directory every source has (the netserver image
	// carries little more than netprobe and /tmp).
	base := fmt.Sprintf("/tmp/netprobe-%s-%d", name, time.Now().UnixNano())
	return HoldFiles{Ready: base + ".ready", Stop: base + ".stop"}
}

// StopHold ends a Hold early and removes its files.
func (f *Framework) StopHold(ctx context.Context, src Source, files HoldFiles) error {
	if _, err := src.exec(ctx, clusters.Probe, "file", "touch", files.Stop); err != nil {
		return fmt.Errorf("%s: stop the held connections: %w", src.Description, err)
	}
	return nil
}

// RemoveHoldFiles deletes the files once the Hold returned.
func (f *Framework) RemoveHoldFiles(ctx context.Context, src Source, files HoldFiles) {
	_, _ = src.exec(ctx, clusters.Probe, "file", "rm", files.Ready, files.Stop)
}

// HoldReady waits until a Hold's ready file exists where src runs:
// starting a probe costs seconds on a busy kernel-VM node, so "it
// started" is no proof that its connections are open.
func (f *Framework) HoldReady(ctx context.Context, src Source, readyFile string, timeout time.Duration) error {
	return Poll(ctx, src.Description+": held connections open ("+readyFile+")", timeout, 200*time.Millisecond, func(ctx context.Context) (bool, string) {
		out, err := src.exec(ctx, clusters.Probe, "file", "exists", readyFile)
		if err != nil {
			return false, fmt.Sprintf("%v %s", err, out)
		}
		return true, ""
	})
}

// Load starts rate new connections a second from src to url for d
// (netprobe load). It blocks for d.
func (f *Framework) Load(ctx context.Context, src Source, url string, rate float64, d time.Duration) (batch.Batch, error) {
	return f.runBatch(ctx, src, "-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-for", d.String(), "load", url)
}

func (f *Framework) runBatch(ctx context.Context, src Source, args ...string) (batch.Batch, error) {
	var b batch.Batch
	// The probe also writes its result to a file where it runs: a pod
	// exec through the API server came back with no error and no output
	// 2 times in a kind run's churn specs (the kubelet logged a broken
	// pipe proxying the stream), and a batch is minutes of load that
	// cannot be asked again.
	result := fmt.Sprintf("/tmp/netprobe-result-%d.json", time.Now().UnixNano())
	cmd := append([]string{clusters.Probe, "-timeout", batchTimeout.String(), "-result-file", result}, args...)
	launched := time.Now()
	out, err := src.exec(ctx, cmd...)
	b.Launched, b.Returned = launched, time.Now()
	what := fmt.Sprintf("%s: netprobe %s", src.Description, strings.Join(args, " "))
	if err == nil && len(bytes.TrimSpace(out)) == 0 {
		klog.InfoS("The exec returned no output; reading the probe's result file", "probe", what, "file", result)
		out, err = src.exec(ctx, clusters.Probe, "file", "cat", result)
	}
	_, _ = src.exec(context.WithoutCancel(ctx), clusters.Probe, "file", "rm", result)
	if err != nil {
		return b, fmt.Errorf("%s: %w", what, err)
	}
	launched, returned := b.Launched, b.Returned
	if err := json.Unmarshal(out, &b); err != nil {
		return b, fmt.Errorf("%s: reading its output %.200q: %w", what, out, err)
	}
	b.Launched, b.Returned = launched, returned
	return b, nil
}

// UDPLoad starts rate new UDP flows a second (a new socket each, one
// datagram and its answer) from src to target for d (netprobe udpload).
func (f *Framework) UDPLoad(ctx context.Context, src Source, target string, rate float64, d time.Duration) (batch.Batch, error) {
	return f.runBatch(ctx, src, "-timeout", "1s", "-rate", strconv.FormatFloat(rate, 'f', -1, 64), "-for", d.String(), "udpload", target)
}

// Stream is a netprobe udpstream: one UDP flow from src to a target.
type Stream struct {
	Target string
	Rate   float64
	For    time.Duration
	// Files: the probe creates Ready once a backend answered; the caller
	// creates Mark right after its change (MarkStream).
	Files HoldFiles
	// Until ends the stream once this backend answered UntilRun times in
	// a row after the mark.
	Until    string
	UntilRun int
}

// UDPStream runs s from src and blocks until it ends.
func (f *Framework) UDPStream(ctx context.Context, src Source, s Stream) (batch.Batch, error) {
	args := []string{"-rate", strconv.FormatFloat(s.Rate, 'f', -1, 64), "-for", s.For.String(),
		"-ready-file", s.Files.Ready, "-mark-file", s.Files.Stop}
	if s.Until != "" {
		args = append(args, "-until", s.Until, "-until-run", strconv.Itoa(max(s.UntilRun, 1)))
	}
	return f.runBatch(ctx, src, append(args, "udpstream", s.Target)...)
}

// MarkStream tells a running UDPStream that the caller's change is made
// (it creates the stream's mark file) and returns how long that took:
// the stream sees the mark at most that long after the change.
func (f *Framework) MarkStream(ctx context.Context, src Source, files HoldFiles) (time.Duration, error) {
	began := time.Now()
	if _, err := src.exec(ctx, clusters.Probe, "file", "touch", files.Stop); err != nil {
		return 0, fmt.Errorf("%s: mark the UDP stream: %w", src.Description, err)
	}
	return time.Since(began), nil
}
