// Package batch is the output of netprobe's batch modes (spread, hold,
// load, udpload, udpstream), shared by the probe that writes it and the specs that read it.
// It must stay free of dependencies: the probe ships in test images.
package batch

import (
	"sort"
	"time"
)

// LoadFailed begins the failure of a spec whose client load itself could
// not run (the probe could not be started or read on its client: the
// harness, not the proxier under test). make validate reads a switch that
// failed so as "could not run" (exit 2), never as a regression.
const LoadFailed = "the client load could not run"

// Request is one request's outcome in a batch.
type Request struct {
	// At is when it started, ms since the batch began; Ms how long it took.
	At float64 `json:"at"`
	Ms float64 `json:"ms"`
	// Conn is the held connection it used (hold), from 0.
	Conn int `json:"conn,omitempty"`
	// Backend answered, or Class says how it failed: refused, reset,
	// timeout, unreachable or error.
	Backend string `json:"backend,omitempty"`
	Class   string `json:"class,omitempty"`
	Error   string `json:"error,omitempty"`
	// Reconnected is set on a held connection's request that found the
	// connection closed by the server between requests and was answered
	// on a new one, as HTTP clients retry an idempotent request.
	Reconnected bool `json:"reconnected,omitempty"`
}

// OK is true when a backend answered.
func (r Request) OK() bool { return r.Class == "" }

// Time is when the request started.
func (b Batch) Time(r Request) time.Time {
	return b.Start.Add(time.Duration(r.At * float64(time.Millisecond)))
}

// Batch is a batch mode's output.
type Batch struct {
	// Kind is the mode: spread, hold or load.
	Kind     string    `json:"kind"`
	Start    time.Time `json:"start"`
	Requests []Request `json:"requests"`
	// Launched and Returned are the caller's clock around the probe's
	// run; the probe's own clock (Start) may be another machine's, a
	// kernel VM's. Zero when unknown.
	Launched, Returned time.Time `json:"-"`
	// Source is the local address of a udpstream's one socket.
	Source string `json:"source,omitempty"`
	// MarkAt is when a udpstream first saw the caller's mark file, ms
	// since Start (the caller's change was made before it).
	MarkAt *float64 `json:"markAt,omitempty"`
}

// CallerWindow is when request r began on the caller's clock: between
// lo and hi. The probe started after Launched and ended before Returned,
// which bounds the offset between the two clocks; with no such record
// both are the probe's own time.
func (b Batch) CallerWindow(r Request) (lo, hi time.Time) {
	at := b.Time(r)
	if b.Launched.IsZero() || b.Returned.IsZero() {
		return at, at
	}
	var end float64
	for _, q := range b.Requests {
		end = max(end, q.At+q.Ms)
	}
	maxOffset := b.Start.Sub(b.Launched)
	minOffset := b.Start.Add(time.Duration(end * float64(time.Millisecond))).Sub(b.Returned)
	return at.Add(-maxOffset), at.Add(-minOffset)
}

// Counts is how many requests each backend answered.
func (b Batch) Counts() map[string]int {
	c := map[string]int{}
	for _, r := range b.Requests {
		if r.OK() {
			c[r.Backend]++
		}
	}
	return c
}

// Failures is how many requests failed, by class.
func (b Batch) Failures() map[string]int {
	c := map[string]int{}
	for _, r := range b.Requests {
		if !r.OK() {
			c[r.Class]++
		}
	}
	return c
}

// Answers are the backends in the order they answered ("" for a failure).
func (b Batch) Answers() []string {
	var out []string
	for _, r := range b.Requests {
		out = append(out, r.Backend)
	}
	return out
}

// CountsOf lists counts for backends in order (0 for one never seen),
// then any other backend that answered, sorted.
func CountsOf(counts map[string]int, backends []string) (names []string, n []int) {
	seen := map[string]bool{}
	for _, b := range backends {
		names, n, seen[b] = append(names, b), append(n, counts[b]), true
	}
	var stray []string
	for b := range counts {
		if !seen[b] {
			stray = append(stray, b)
		}
	}
	sort.Strings(stray)
	for _, b := range stray {
		names, n = append(names, b), append(n, counts[b])
	}
	return names, n
}
