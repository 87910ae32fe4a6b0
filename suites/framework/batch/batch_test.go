package batch

import (
	"testing"
	"time"
)

func TestCallerWindowBoundsARequestOnTheCallersClock(t *testing.T) {
	host := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// The probe's clock runs 3 s behind; it started 1 s after the caller
	// launched it and returned 1 s after its last request ended.
	b := Batch{
		Start:    host.Add(time.Second - 3*time.Second),
		Requests: []Request{{At: 0, Ms: 10}, {At: 5000, Ms: 10}},
		Launched: host,
		Returned: host.Add(time.Second + 5010*time.Millisecond + time.Second),
	}
	lo, hi := b.CallerWindow(b.Requests[1])
	truth := host.Add(time.Second + 5*time.Second)
	if truth.Before(lo) || truth.After(hi) {
		t.Errorf("request at %s on the caller's clock, window [%s, %s] misses it", truth.Format(time.StampMilli), lo.Format(time.StampMilli), hi.Format(time.StampMilli))
	}
	if hi.Sub(lo) > 2*time.Second+time.Millisecond {
		t.Errorf("window %s wide, want at most the 2 s of start-up and return delay", hi.Sub(lo))
	}
	if lo, hi := (Batch{Start: host}).CallerWindow(Request{At: 100}); !lo.Equal(hi) || !lo.Equal(host.Add(100*time.Millisecond)) {
		t.Errorf("without the caller's record the window is the probe's own time, got [%s, %s]", lo, hi)
	}
}
