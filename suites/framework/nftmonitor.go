package framework

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
)

const (
	// monitorMatch keeps the monitor's additions to kube-proxy's table
	// (rules, map and set elements, chains: where an endpoint's address
	// shows up, in ours and in upstream's layout), dropping deletions.
	monitorMatch = `^add .*kube-proxy`
	// monitorMax bounds a monitor whose stop file never comes (the suite
	// killed): the longest rollout the churn specs wait for, and more.
	monitorMax = 30 * time.Minute
	// monitorSlack: the proxier may get an EndpointSlice change from the
	// API server before the suite's watch does and program it before the
	// suite stamped it ready; such an addition counts (as 0) when it came
	// at most this long before.
	monitorSlack = time.Second
	// Latency methods, as the report names them.
	LatencyByEvents = "nft monitor events"
	LatencyByReads  = "reads of the rules (upper bound: one read)"
)

// monitorLatency times node's programming by its own nftables change
// events: nft monitor runs on the node under netprobe stamp, which stamps
// each line as it arrives, until ctx ends; an endpoint's latency is from
// its ready event to the first addition to the kube-proxy table naming
// its IP. Reading the rules again and again (pollLatency) bounds a latency
// only within one read, and a read costs 0.1-0.4 s on this machine under
// a rollout's load, of the same order as what it measures. It returns
// ok false, having measured nothing, when node is not in nftables mode,
// its clock is not the suite's (the stamps are the node's), or the
// monitor cannot run; the caller then reads the rules instead.
func (f *Framework) monitorLatency(ctx context.Context, node string, watched []Watched, since time.Time) ([]time.Duration, bool) {
	if mode, err := f.nodeMode(node); err != nil || mode != clusters.ModeNFTables {
		return nil, false
	}
	if err := f.sameClock(ctx, node); err != nil {
		klog.InfoS("Timing programming by reading the rules", "node", node, "reason", err)
		return nil, false
	}
	src := f.nodeSource(node)
	files := NewHoldFiles("nftmonitor-" + node)
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), monitorMax+time.Minute)
	defer cancel()
	go func() {
		out, err := src.exec(ectx, clusters.Probe, "-for", monitorMax.String(),
			"-ready-file", files.Ready, "-stop-file", files.Stop, "-match", monitorMatch, "stamp", "nft", "monitor")
		done <- result{out, err}
	}()
	defer f.RemoveHoldFiles(ectx, src, files)
	var watching time.Time
	for watching.IsZero() {
		select {
		case r := <-done:
			klog.InfoS("nft monitor ended before it watched; timing programming by reading the rules", "node", node, "err", r.err, "output", string(r.out))
			return nil, false
		case <-ctx.Done():
			_ = f.StopHold(ectx, src, files)
			<-done
			return nil, false
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := src.exec(ctx, clusters.Probe, "file", "exists", files.Ready); err == nil {
			watching = time.Now()
		}
	}
	var r result
	select {
	case r = <-done:
		// Ended while the rollout ran: what it saw up to then stands, the
		// endpoints after it go unmeasured, and the log says why.
		klog.InfoS("nft monitor ended early", "node", node, "err", r.err)
	case <-ctx.Done():
		if err := f.StopHold(ectx, src, files); err != nil {
			klog.InfoS("Could not stop nft monitor; waiting for its bound", "node", node, "err", err)
		}
		r = <-done
	}
	lines, other, err := stampedLines(r.out)
	if err != nil {
		klog.InfoS("nft monitor output unreadable; timing nothing on this node", "node", node, "err", err)
		return nil, true
	}
	if len(other) > 0 {
		// nft prints no line for an event it cannot place: an endpoint
		// whose addition it skipped is timed by a later one naming it,
		// or not at all; the log says how often that may have happened.
		klog.InfoS("nft monitor said more than its events", "node", node, "lines", len(other), "first", other[0])
	}
	return eventLatencies(lines, watched, latest(since, watching)), true
}

// stampedLine is one line of netprobe stamp's output.
type stampedLine struct {
	at   time.Time
	text string
}

// stampedLines reads netprobe stamp's output. The exec returns the
// node's stderr with it (nft's own warnings, "W: Received event for an
// unknown set."): those lines carry no stamp and come back apart.
func stampedLines(out []byte) (lines []stampedLine, other []string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		ns, text, ok := strings.Cut(sc.Text(), " ")
		n, perr := strconv.ParseInt(ns, 10, 64)
		if !ok || perr != nil {
			other = append(other, sc.Text())
			continue
		}
		lines = append(lines, stampedLine{time.Unix(0, n), text})
	}
	return lines, other, sc.Err()
}

// eventLatencies gives each endpoint that turned ready after since the
// time to the first stamped line naming its IP (at most monitorSlack
// before its ready event counts, as 0); an endpoint no line names is not
// counted, as a read that never holds it is not.
func eventLatencies(lines []stampedLine, watched []Watched, since time.Time) []time.Duration {
	var out []time.Duration
	for _, e := range firstReady(watched, since) {
		for _, l := range lines {
			if l.at.Before(e.At.Add(-monitorSlack)) || !HoldsIP(l.text, e.IP) {
				continue
			}
			out = append(out, max(0, l.at.Sub(e.At)))
			break
		}
	}
	return out
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sameClock checks that node's clock is the suite's: the time netprobe
// reads there must fall within the exec that asked for it, which a shared
// clock always does (a namespace or a container on this host); three
// tries, as a remote clock within an exec's length of ours would also
// pass and its stamps err by at most that.
func (f *Framework) sameClock(ctx context.Context, node string) error {
	var last string
	for range 3 {
		t0 := time.Now()
		out, err := f.Cluster.ExecOnNode(ctx, node, clusters.Probe, "now")
		t1 := time.Now()
		if err != nil {
			return fmt.Errorf("netprobe now: %w: %s", err, out)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			return fmt.Errorf("netprobe now answered %q: %w", out, err)
		}
		at := time.Unix(0, n)
		if !at.Before(t0) && !at.After(t1) {
			return nil
		}
		last = fmt.Sprintf("its time %s is outside the exec's %s..%s", at.Format("15:04:05.000000"), t0.Format("15:04:05.000000"), t1.Format("15:04:05.000000"))
	}
	return fmt.Errorf("node clock is not the suite's: %s", last)
}
