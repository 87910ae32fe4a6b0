package stats

import (
	"math"
	"strings"
	"testing"
)

func TestUniformJudgesCountsPerBackend(t *testing.T) {
	tests := []struct {
		name     string
		counts   []int
		wantStat float64
		wantP    float64
		uneven   bool
	}{
		{"an exactly even spread is even", []int{30, 30, 30}, 0, 1, false},
		// df 2: the survival function is exp(-x/2).
		{"a moderate skew is computed exactly", []int{10, 20, 30}, 10, math.Exp(-5), false},
		{"everything on one backend is uneven", []int{90, 0, 0}, 180, math.Exp(-90), true},
		{"one backend at twice its share in a large sample is uneven", []int{500, 250, 250}, 125, math.Exp(-62.5), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Uniform(tt.counts, 0.001)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(v.Stat-tt.wantStat) > 1e-9 || math.Abs(v.P-tt.wantP) > 1e-9*math.Max(1, tt.wantP) || v.Uneven != tt.uneven || v.DF != 2 {
				t.Errorf("Uniform(%v) = %v (uneven %v), want X² %v, p %v, uneven %v", tt.counts, v, v.Uneven, tt.wantStat, tt.wantP, tt.uneven)
			}
			if math.Abs(v.Critical-(-2*math.Log(0.001))) > 1e-6 {
				t.Errorf("critical value %v, want %v (df 2: -2 ln alpha)", v.Critical, -2*math.Log(0.001))
			}
		})
	}
}

func TestUniformRefusesCountsItCannotJudge(t *testing.T) {
	for _, tt := range []struct {
		name   string
		counts []int
		want   string
	}{
		{"one backend", []int{10}, "at least 2 backends"},
		{"no request", []int{0, 0}, "1 request"},
		{"a negative count", []int{3, -1}, "negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Uniform(tt.counts, 0.001); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Uniform(%v) error %v, want one containing %q", tt.counts, err, tt.want)
			}
		})
	}
}

// The sizes the scheduler specs use (chi-square at p = 0.001, a backend
// at twice its share caught with probability >= 0.999).
func TestSampleSizesForTheSchedulerSpecs(t *testing.T) {
	for _, tt := range []struct{ k, want int }{{3, 93}, {4, 169}, {6, 325}} {
		if got := SampleSize(tt.k, 0.001, 0.999); got != tt.want {
			t.Errorf("SampleSize(%d backends) = %d, want %d", tt.k, got, tt.want)
		}
	}
}

// The error rates the spec texts promise, checked by a simulation with
// another seed than SampleSize's: at SampleSize requests a correct
// proxier fails about 1 in 1,000 runs and one giving a backend twice its
// share passes at most about 1 in 1,000.
func TestSimulatedErrorRatesMatchWhatTheSpecsPromise(t *testing.T) {
	for _, k := range []int{3, 4} {
		n := SampleSize(k, 0.001, 0.999)
		even := make([]float64, k)
		for i := range even {
			even[i] = 1 / float64(k)
		}
		if rate := SimulatedPower(even, n, 0.001, 20000, 7); rate > 0.0025 {
			t.Errorf("%d backends, %d requests: an even spread called uneven in %.4f of runs, want about 0.001", k, n, rate)
		}
		if rate := SimulatedPower(TwiceShare(k), n, 0.001, 20000, 7); rate < 0.9985 {
			t.Errorf("%d backends, %d requests: twice its share caught in %.4f of runs, want at least 0.999", k, n, rate)
		}
	}
}

// The noncentral approximation alone would choose too few requests: the
// reason SampleSize checks by simulation.
func TestTheApproximationAloneIsOptimistic(t *testing.T) {
	probs := TwiceShare(4)
	n := 1
	for Power(probs, n, 0.001) < 0.999 {
		n++
	}
	if rate := SimulatedPower(probs, n, 0.001, 20000, 7); rate >= 0.999 {
		t.Errorf("at the approximation's %d requests the simulated power is %.4f; SampleSize's simulation step is no longer needed", n, rate)
	}
}
