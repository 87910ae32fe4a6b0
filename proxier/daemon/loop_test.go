package daemon

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// recorder collects the syncs the loop makes, in order.
type recorder struct {
	mu    sync.Mutex
	runs  []bool // full flag of each run
	fail  int    // fail this many runs first
	empty int    // then report this many runs as having found nothing
	ran   chan struct{}
	// rearmed: the loop armed its periodic timer again after a sync.
	rearmed chan struct{}
	clock   *clocktesting.FakeClock
	at      []time.Time
	cost    time.Duration // each sync moves the clock this far
}

func (r *recorder) sync(_ context.Context, full bool) (bool, error) {
	r.mu.Lock()
	r.runs = append(r.runs, full)
	r.at = append(r.at, r.clock.Now())
	if r.cost > 0 {
		r.clock.Step(r.cost)
	}
	failing := r.fail > 0
	empty := false
	if failing {
		r.fail--
	} else if len(r.runs) > 1 && r.empty > 0 {
		r.empty--
		empty = true
	}
	r.mu.Unlock()
	r.ran <- struct{}{}
	if failing {
		return true, errors.New("kernel said no")
	}
	return !empty, nil
}

func (r *recorder) snapshot() ([]bool, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.runs...), append([]time.Time(nil), r.at...)
}

func startLoop(t *testing.T, fail int) (*recorder, chan struct{}, *clocktesting.FakeClock) {
	t.Helper()
	return startBudgetLoop(t, fail, 0, 0, nil)
}

// startBudgetLoop is startLoop with a sync budget (percent), syncs that
// take cost and, when cpu is set, the CPU time they cost read from it.
func startBudgetLoop(t *testing.T, fail, budget int, cost time.Duration, cpu func() (time.Duration, bool)) (*recorder, chan struct{}, *clocktesting.FakeClock) {
	t.Helper()
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	r := &recorder{ran: make(chan struct{}, 100), rearmed: make(chan struct{}, 100), clock: fc, fail: fail, cost: cost}
	trigger := make(chan struct{}, 1)
	l := newLoop(time.Second, 30*time.Second, fc)
	l.budgetPercent = budget
	l.cpu = cpu
	l.rearmed = func() {
		select {
		case r.rearmed <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.run(ctx, trigger, r.sync); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, trigger, fc
}

func waitRun(t *testing.T, r *recorder) {
	t.Helper()
	select {
	case <-r.ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not run a sync")
	}
}

func noRun(t *testing.T, r *recorder) {
	t.Helper()
	select {
	case <-r.ran:
		runs, _ := r.snapshot()
		t.Fatalf("unexpected sync; runs so far (full flags): %v", runs)
	case <-time.After(50 * time.Millisecond):
	}
}

// waitRearmed waits until the loop armed its periodic timer again after
// the sync waitRun saw: waiting for the clock to have a timer is not
// enough, the one being replaced still counts (a cold run lost the
// resync that way).
func waitRearmed(t *testing.T, r *recorder) {
	t.Helper()
	select {
	case <-r.rearmed:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not arm its periodic timer after the sync")
	}
}

// waitTimers waits until the loop has armed n timers, so that a Step of the
// fake clock reaches them.
func waitTimers(t *testing.T, fc *clocktesting.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !fc.HasWaiters() || fc.Waiters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("loop armed %d timers, want %d", fc.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTheFirstSyncIsImmediateAndFull(t *testing.T) {
	r, _, _ := startLoop(t, 0)
	waitRun(t, r)
	if runs, _ := r.snapshot(); len(runs) != 1 || !runs[0] {
		t.Fatalf("runs = %v, want one full sync", runs)
	}
}

// The informers' initial events leave a wake-up behind the first sync; the
// empty sync it causes must not make the first real change wait.
func TestASyncThatFoundNothingDoesNotDelayTheNextChange(t *testing.T) {
	r, trigger, fc := startLoop(t, 0)
	r.mu.Lock()
	r.empty = 1
	r.mu.Unlock()
	waitRun(t, r)
	trigger <- struct{}{} // the leftover wake-up
	waitTimers(t, fc, 2)
	fc.Step(time.Second)
	waitRun(t, r) // finds nothing
	fc.Step(300 * time.Millisecond)
	trigger <- struct{}{} // a real change, 0.3 s after the empty sync
	waitRun(t, r)
	runs, at := r.snapshot()
	if len(runs) != 3 {
		t.Fatalf("runs = %v, want the first, the empty one and the change", runs)
	}
	if gap := at[2].Sub(at[1]); gap != 300*time.Millisecond {
		t.Fatalf("the change was synced %v after the empty sync, want at once (300ms, when it came)", gap)
	}
}

func TestChangesWithinMinSyncPeriodAreCoalescedIntoOneSync(t *testing.T) {
	r, trigger, fc := startLoop(t, 0)
	waitRun(t, r)
	for i := 0; i < 5; i++ {
		select {
		case trigger <- struct{}{}:
		default: // the channel holds one pending signal, like the tracker's
		}
	}
	noRun(t, r) // minSyncPeriod has not passed
	waitTimers(t, fc, 2)
	fc.Step(time.Second)
	waitRun(t, r)
	noRun(t, r)
	runs, at := r.snapshot()
	if len(runs) != 2 || runs[1] {
		t.Fatalf("runs = %v, want an initial full sync then one partial", runs)
	}
	if gap := at[1].Sub(at[0]); gap < time.Second {
		t.Fatalf("second sync came %v after the first, want >= minSyncPeriod (1s)", gap)
	}
}

func TestSyncPeriodForcesAFullResync(t *testing.T) {
	r, _, fc := startLoop(t, 0)
	waitRun(t, r)
	waitRearmed(t, r)
	fc.Step(30 * time.Second)
	waitRun(t, r)
	if runs, _ := r.snapshot(); len(runs) != 2 || !runs[1] {
		t.Fatalf("runs = %v, want the periodic resync to be full", runs)
	}
}

// minSyncPeriod batches bursts of changes; a resync nobody asked for must
// not make the change that follows it wait.
func TestAPeriodicResyncDoesNotDelayTheNextChange(t *testing.T) {
	r, trigger, fc := startLoop(t, 0)
	waitRun(t, r)
	waitRearmed(t, r)
	fc.Step(30 * time.Second)
	waitRun(t, r) // the periodic resync
	fc.Step(100 * time.Millisecond)
	trigger <- struct{}{}
	waitRun(t, r)
	runs, at := r.snapshot()
	if len(runs) != 3 || runs[2] {
		t.Fatalf("runs = %v, want first, periodic full, then the change", runs)
	}
	if gap := at[2].Sub(at[1]); gap != 100*time.Millisecond {
		t.Fatalf("the change was synced %v after the resync, want at once (100ms, when it came)", gap)
	}
}

func TestAFailedSyncIsRetriedAsTheSameKind(t *testing.T) {
	r, _, fc := startLoop(t, 1)
	waitRun(t, r) // the first full sync fails
	noRun(t, r)
	waitTimers(t, fc, 2)
	fc.Step(time.Second)
	waitRun(t, r)
	if runs, _ := r.snapshot(); len(runs) != 2 || !runs[0] || !runs[1] {
		t.Fatalf("runs = %v, want the failed full sync retried as full", runs)
	}
}

// With a sync budget, a cheap sync is followed by a short wait: 20 ms of
// syncing at 10% allows the next one 180 ms after the first began.
func TestACheapSyncWaitsOnlyWhatTheBudgetAsks(t *testing.T) {
	r, trigger, fc := startBudgetLoop(t, 0, 10, 20*time.Millisecond, nil)
	waitRun(t, r)
	waitRearmed(t, r)
	trigger <- struct{}{}
	waitTimers(t, fc, 2)
	fc.Step(159 * time.Millisecond) // 179 ms after the first sync began
	noRun(t, r)
	fc.Step(time.Millisecond)
	waitRun(t, r)
	if _, at := r.snapshot(); at[1].Sub(at[0]) != 180*time.Millisecond {
		t.Fatalf("second sync began %v after the first, want 180ms (9 x its 20ms)", at[1].Sub(at[0]))
	}
}

// An expensive sync waits minSyncPeriod, never longer, with or without a
// budget; without one (0, kube-proxy's behaviour) a cheap one does too.
func TestMinSyncPeriodStillBoundsTheWait(t *testing.T) {
	for _, c := range []struct {
		budget int
		cost   time.Duration
	}{{10, 500 * time.Millisecond}, {0, 20 * time.Millisecond}} {
		r, trigger, fc := startBudgetLoop(t, 0, c.budget, c.cost, nil)
		waitRun(t, r)
		waitRearmed(t, r)
		trigger <- struct{}{}
		waitTimers(t, fc, 2)
		fc.Step(time.Second - c.cost - time.Millisecond)
		noRun(t, r)
		fc.Step(time.Millisecond)
		waitRun(t, r)
		if _, at := r.snapshot(); at[1].Sub(at[0]) != time.Second {
			t.Errorf("budget %d%%, syncs of %v: second sync began %v after the first, want minSyncPeriod (1s)", c.budget, c.cost, at[1].Sub(at[0]))
		}
	}
}

// On a busy machine a sync waits for a core: 100 ms of wall time for 20
// ms of CPU. The budget counts the CPU time, so the next sync may begin
// 180 ms after it began, not 900 ms; a sync whose CPU time cannot be read
// counts its wall time.
func TestTheBudgetCountsASyncsCPUTimeWhereItIsLess(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
		want time.Duration
	}{{"CPU time read", true, 180 * time.Millisecond}, {"CPU time unknown", false, 900 * time.Millisecond}} {
		var mu sync.Mutex
		var calls int
		cpu := func() (time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return time.Duration(calls) * 20 * time.Millisecond, c.ok
		}
		r, trigger, fc := startBudgetLoop(t, 0, 10, 100*time.Millisecond, cpu)
		waitRun(t, r)
		waitRearmed(t, r)
		trigger <- struct{}{}
		waitTimers(t, fc, 2)
		fc.Step(c.want - 100*time.Millisecond - time.Millisecond)
		noRun(t, r)
		fc.Step(time.Millisecond)
		waitRun(t, r)
		if _, at := r.snapshot(); at[1].Sub(at[0]) != c.want {
			t.Errorf("%s: second sync began %v after the first, want %v", c.name, at[1].Sub(at[0]), c.want)
		}
	}
}

// syncCPU counts the calling thread's work and that of the children it
// waited for (an iptables-restore), not time spent waiting.
func TestSyncCPUCountsTheThreadAndItsChildrenNotSleep(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok := syncCPU()
	if !ok {
		t.Fatal("getrusage failed")
	}
	time.Sleep(200 * time.Millisecond)
	c1, _ := syncCPU()
	if c1-c0 > 100*time.Millisecond {
		t.Errorf("200 ms of sleep counted as %v of CPU", c1-c0)
	}
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
	}
	c2, _ := syncCPU()
	if c2-c1 < 100*time.Millisecond {
		t.Errorf("200 ms of spinning counted as %v of CPU", c2-c1)
	}
	if err := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done").Run(); err != nil {
		t.Fatal(err)
	}
	c3, _ := syncCPU()
	if c3-c2 < 50*time.Millisecond {
		t.Errorf("a child's busy loop counted as %v of CPU", c3-c2)
	}
}
