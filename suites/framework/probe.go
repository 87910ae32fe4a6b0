package framework

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/clusters"
)

// Source is where a probe runs from: a pod's or a node's network namespace.
type Source struct {
	// Description says where, e.g. "pod client-x on node-2".
	Description string
	Node        string
	exec        func(ctx context.Context, cmd ...string) ([]byte, error)
}

// FromPod probes from inside pod p.
func (f *Framework) FromPod(p corev1.Pod) Source {
	return Source{
		Description: fmt.Sprintf("pod %s on %s", p.Name, p.Spec.NodeName),
		Node:        p.Spec.NodeName,
		exec: func(ctx context.Context, cmd ...string) ([]byte, error) {
			return f.Cluster.ExecInPod(ctx, p.Namespace, p.Name, cmd...)
		},
	}
}

// FromNode probes from node's own network namespace (host network).
func (f *Framework) FromNode(node string) Source {
	f.SkipWithoutNodeAccess()
	return f.nodeSource(node)
}

// nodeSource is FromNode without its skip, for callers off the spec's
// goroutine (where a Ginkgo Skip cannot go) that checked access before.
func (f *Framework) nodeSource(node string) Source {
	return Source{
		Description: "node " + node,
		Node:        node,
		exec: func(ctx context.Context, cmd ...string) ([]byte, error) {
			return f.Cluster.ExecOnNode(ctx, node, cmd...)
		},
	}
}

// Probe kinds (cmd/netprobe).
const (
	HTTP = "http" // target is a URL; the answer is the body
	UDP  = "udp"  // target is IP:PORT; the answer is the datagram
	TCP  = "tcp"  // target is IP:PORT; connect only
)

// Result is one probe's outcome.
type Result struct {
	OK bool
	// Answer is the body or datagram (trimmed) when OK.
	Answer string
	// Class is refused, timeout, unreachable or error when not OK.
	Class string
	// Elapsed is the client's own time to the failure (netprobe measures
	// it, so namespace entry costs are not in it); when OK, wall time.
	Elapsed time.Duration
	// Raw is everything the probe printed, for messages.
	Raw string
}

// Backend is the name of the backend that answered: the netserver's
// hostname (its pod name), the first word of a UDP answer.
func (r Result) Backend() string {
	if f := strings.Fields(r.Answer); r.OK && len(f) > 0 {
		return f[0]
	}
	return ""
}

func (r Result) String() string {
	if r == (Result{}) {
		return "none"
	}
	if r.OK {
		return fmt.Sprintf("answer %q", r.Answer)
	}
	return fmt.Sprintf("%s after %s (%s)", r.Class, r.Elapsed, strings.TrimSpace(r.Raw))
}

// Probe runs the probe (clusters.Probe, cmd/netprobe) once from src.
func (f *Framework) Probe(ctx context.Context, src Source, kind, target string, timeout time.Duration) Result {
	// Let netprobe give up before the caller's deadline kills it, so the
	// failure says timeout or refused rather than "signal: killed".
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d) - 300*time.Millisecond; left < timeout {
			timeout = max(left, 100*time.Millisecond)
		}
	}
	began := time.Now()
	out, err := src.exec(ctx, clusters.Probe, "-timeout", timeout.String(), kind, target)
	wall := time.Since(began)
	raw := string(out)
	if err == nil {
		return Result{OK: true, Answer: strings.TrimSpace(raw), Elapsed: wall, Raw: raw}
	}
	r := Result{Class: "error", Elapsed: wall, Raw: raw + " " + err.Error()}
	// "<class> <ms> <error>" from netprobe; anything else is an exec failure.
	if fields := strings.Fields(raw); len(fields) >= 2 {
		if ms, perr := strconv.ParseFloat(fields[1], 64); perr == nil {
			r.Class = fields[0]
			r.Elapsed = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return r
}

// Reach probes target from src until every backend in want answered or
// timeout passed. It returns how often each backend answered; on failure
// the error says what was reached and the last failure, and a failed
// probe entry is recorded for the report.
func (f *Framework) Reach(ctx context.Context, src Source, kind, target, service string, want []string, timeout time.Duration) (map[string]int, error) {
	seen := map[string]int{}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	var last Result
	err := Poll(ctx, fmt.Sprintf("%s -> %s %s reaching backends %v", src.Description, kind, target, want), timeout, 100*time.Millisecond, func(ctx context.Context) (bool, string) {
		r := f.Probe(ctx, src, kind, target, 2*time.Second)
		if b := r.Backend(); b != "" {
			seen[b]++
		} else {
			last = r
		}
		for w := range wanted {
			if seen[w] == 0 {
				return false, fmt.Sprintf("reached %v; last failure: %v", seenList(seen), last)
			}
		}
		return true, ""
	})
	var stray []string
	for b := range seen {
		if !wanted[b] {
			stray = append(stray, b)
		}
	}
	if err == nil && len(stray) > 0 {
		sort.Strings(stray)
		err = fmt.Errorf("%s -> %s %s: answered by %v, not a backend of the Service (want %v)", src.Description, kind, target, stray, want)
	}
	// Recorded either way: a passing spec's report says what it proved.
	f.RecordProbe(src, kind, target, service, fmt.Sprintf("answers from %v", want), fmt.Sprintf("%v; last failure: %v", seenList(seen), last), err != nil)
	return seen, err
}

func seenList(seen map[string]int) string {
	if len(seen) == 0 {
		return "no backend"
	}
	var parts []string
	for b, n := range seen {
		parts = append(parts, fmt.Sprintf("%s x%d", b, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// HostPort joins an IP and port ("[ip]:port" for IPv6).
func HostPort(ip string, port int32) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}
