package daemon

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/utils/clock"
)

// loop runs sync on demand, at most once per minInterval, and with
// full=true at least once per maxInterval, like kube-proxy's
// BoundedFrequencyRunner. A failed sync is retried after retryInterval
// (never sooner than minInterval) so a broken kernel call does not spin.
type loop struct {
	minInterval   time.Duration
	maxInterval   time.Duration
	retryInterval time.Duration
	clock         clock.Clock // fake in tests
	// budgetPercent, when above 0, shortens the wait after a sync that
	// cost little: the wait is at most minInterval and at most what keeps
	// syncing to this share of the time (9x the sync's own duration at
	// 10%). minInterval exists so that a node does not spend all its time
	// rewriting rules while endpoints churn; a 2 ms nftables partial sync
	// followed by a 1 s wait spends 0.2% and makes every change behind it
	// wait up to a second (the churn suite's p99 programming latency, 1.2
	// s in nftables, was that wait). 0 keeps kube-proxy's fixed wait.
	budgetPercent int
	// cpu, when set, reads the CPU time a sync costs the machine
	// (syncCPU); the budget then counts that rather than the sync's wall
	// time where it is less. nil (tests) counts wall time.
	cpu func() (time.Duration, bool)
	// rearmed, when set (tests), is called once the periodic timer is
	// armed again after a sync: a fake clock stepped between the sync and
	// that moment fires the timer being replaced, and the resync is lost.
	rearmed func()
}

func newLoop(minInterval, maxInterval time.Duration, c clock.Clock) *loop {
	return &loop{
		minInterval:   minInterval,
		maxInterval:   maxInterval,
		retryInterval: time.Second,
		clock:         c,
	}
}

// run blocks until ctx is done. trigger asks for a sync; the first sync
// happens at once and is full. minInterval exists to batch bursts of
// changes, so only syncs that programmed a change count against it: not one
// that found nothing to do (sync reports whether it wrote anything), not a
// periodic resync nobody asked for. Otherwise the wake-up left over from
// the informers' initial events (an empty sync ~1 s after the first) or a
// resync every maxInterval made the next change wait up to a second
// (700-900 ms p99 seen in the benchmark).
func (l *loop) run(ctx context.Context, trigger <-chan struct{}, sync func(ctx context.Context, full bool) (bool, error)) {
	var (
		lastRun     time.Time
		gap         = l.minInterval // the wait after lastRun's sync
		pending     = true
		fullPending = true
		asked       = true      // a trigger (or the start) wants this sync
		waiting     clock.Timer // armed while a pending run waits for minInterval
	)
	periodic := l.clock.NewTimer(l.maxInterval)
	defer periodic.Stop()
	stopWaiting := func() {
		if waiting != nil {
			waiting.Stop()
			waiting = nil
		}
	}
	defer stopWaiting()

	for {
		if pending && waiting == nil {
			if due := lastRun.Add(gap).Sub(l.clock.Now()); due > 0 {
				waiting = l.clock.NewTimer(due)
			} else {
				full, counts := fullPending, asked
				pending, fullPending, asked = false, false, false
				prevRun, prevGap := lastRun, gap
				lastRun = l.clock.Now()
				wrote, cost, err := l.timed(ctx, full, sync)
				gap = l.gapAfter(cost)
				if err == nil && (!wrote || !counts) {
					lastRun, gap = prevRun, prevGap
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					// Retry the same kind of sync; state keeps the changes.
					pending, fullPending = true, full || fullPending
					waiting = l.clock.NewTimer(max(l.retryInterval, l.minInterval))
				}
				periodic.Stop()
				periodic = l.clock.NewTimer(l.maxInterval)
				if l.rearmed != nil {
					l.rearmed()
				}
				continue
			}
		}

		var waitC <-chan time.Time
		if waiting != nil {
			waitC = waiting.C()
		}
		select {
		case <-ctx.Done():
			return
		case <-trigger:
			pending, asked = true, true
		case <-periodic.C():
			pending, fullPending = true, true
			periodic = l.clock.NewTimer(l.maxInterval)
		case <-waitC:
			waiting = nil
			// A retry after an error waits out retryInterval, not minInterval.
			lastRun = time.Time{}
		}
	}
}

// timed runs sync and returns what it cost: its wall time, or its CPU
// time where cpu reads one and it is less. On a busy machine (the churn
// suite's 50 starting pods on 2 cores) a 5 ms nftables sync took 70-80 ms
// of wall time waiting for a core, and 9x that held the next change back
// 0.6-0.7 s: the p99 of the suite's programming latency. What a sync
// costs the machine is its CPU time; the wait keeps that to the budget.
// The thread is locked so that its CPU time is the sync's.
func (l *loop) timed(ctx context.Context, full bool, sync func(ctx context.Context, full bool) (bool, error)) (bool, time.Duration, error) {
	start := l.clock.Now()
	if l.cpu == nil {
		wrote, err := sync(ctx, full)
		return wrote, l.clock.Since(start), err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok0 := l.cpu()
	wrote, err := sync(ctx, full)
	cost := l.clock.Since(start)
	if c1, ok1 := l.cpu(); ok0 && ok1 {
		cost = min(cost, c1-c0)
	}
	return wrote, cost, err
}

// syncCPU is the CPU time of the calling thread and of this process's
// children that were waited for (iptables-restore, ipset: an exec'd
// sync's work is in its child); false when the kernel does not say.
func syncCPU() (time.Duration, bool) {
	var self, kids unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &self) != nil || unix.Getrusage(unix.RUSAGE_CHILDREN, &kids) != nil {
		return 0, false
	}
	tv := func(t unix.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime), true
}

// gapAfter is the wait after a sync that took cost: minInterval, or less
// when budgetPercent allows.
func (l *loop) gapAfter(cost time.Duration) time.Duration {
	if l.budgetPercent <= 0 || l.budgetPercent >= 100 {
		return l.minInterval
	}
	return min(l.minInterval, cost*time.Duration(100-l.budgetPercent)/time.Duration(l.budgetPercent))
}
