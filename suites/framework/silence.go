package framework

import (
	"context"
	"fmt"
	"time"
)

// Unanswered waits until n probes in a row from src fail the way want
// says (nil: any failure), each given probe to answer, and returns the
// last one. It is how a spec shows a port closed or traffic dropped: a
// change takes a sync to reach the rules, and one lost probe proves
// nothing. The error says what answered instead.
func (f *Framework) Unanswered(ctx context.Context, src Source, kind, target, service, what string, want func(Result) bool, n int, probe, timeout time.Duration) (Result, error) {
	if want == nil {
		want = func(r Result) bool { return !r.OK }
	}
	run := 0
	var last Result
	err := Poll(ctx, fmt.Sprintf("%s -> %s %s (%s) to be %s (%d probes in a row)", src.Description, kind, target, service, what, n), timeout, 50*time.Millisecond, func(ctx context.Context) (bool, string) {
		last = f.Probe(ctx, src, kind, target, probe)
		if !want(last) {
			run = 0
			return false, last.String()
		}
		run++
		return run >= n, last.String()
	})
	f.RecordProbe(src, kind, target, service, what, last.String(), err != nil)
	return last, err
}

// Sample probes n times from src and counts the answers by backend; a
// failed probe counts under "" with the last failure returned. A spec
// asserts on which backends answered (affinity, local endpoints only).
func (f *Framework) Sample(ctx context.Context, src Source, kind, target string, n int) (map[string]int, Result) {
	seen := map[string]int{}
	var failed Result
	for i := 0; i < n && ctx.Err() == nil; i++ {
		r := f.Probe(ctx, src, kind, target, probeTimeout)
		seen[r.Backend()]++
		if !r.OK {
			failed = r
		}
	}
	return seen, failed
}

// Only reports whether every probe of a Sample was answered by backend.
func Only(seen map[string]int, backend string) bool {
	return len(seen) == 1 && seen[backend] > 0
}
