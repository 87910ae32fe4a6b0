//go:build e2e

package services

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/framework"
)

// sampler reads a node's conntrack usage about once a second: the fill
// curve.
type sampler struct {
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	points []entry.Point
	last   framework.ConntrackUsage
	err    error
}

func startSampler(ctx context.Context, node string) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{start: time.Now(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			u, err := f.NodeConntrack(ctx, node)
			s.mu.Lock()
			if err == nil {
				s.points = append(s.points, entry.Point{X: time.Since(s.start).Seconds(), Y: float64(u.Entries)})
				s.last = u
			} else if ctx.Err() == nil {
				s.err = err
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return s
}

func (s *sampler) latest() framework.ConntrackUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// waitFull waits until the entries reach limit, or within 1% of it (a
// reading a second apart may catch a few entries between expiring and
// being replaced), and the kernel has dropped a packet since the reading
// before the fill (drops): the fill itself meets the limit, not only
// what was there before it.
func (s *sampler) waitFull(ctx context.Context, limit, drops uint64, timeout time.Duration) error {
	return framework.Poll(ctx, fmt.Sprintf("conntrack entries at the limit %d and the kernel dropping new flows", limit), timeout, 500*time.Millisecond, func(context.Context) (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.last.Entries >= limit-limit/100 && s.last.Drop > drops, fmt.Sprintf("entries %d, drops since the fill began %d (last read error: %v)", s.last.Entries, s.last.Drop-min(drops, s.last.Drop), s.err)
	})
}

// stop ends the sampling and returns the curve.
func (s *sampler) stop() []entry.Point {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	Expect(len(s.points)).To(BeNumerically(">", 3), "the fill curve has %d points (last read error: %v)", len(s.points), s.err)
	return s.points
}

// programWhileFull creates a NodePort Service over the fill's backends
// while node's table is full and waits until node's rules hold its
// cluster IP (read through the suite's exempted exec): the proxier keeps
// syncing. It returns the Service and how long that took.
func programWhileFull(ctx context.Context, ns, node string) (*corev1.Service, time.Duration) {
	created := time.Now()
	late, err := f.CreateService(ctx, framework.NetserverService(ns, "late", corev1.ServiceTypeNodePort, map[string]string{"app": "fill"}))
	Expect(err).NotTo(HaveOccurred())
	var took time.Duration
	err = framework.Poll(ctx, fmt.Sprintf("node %s programs Service %s/late (%s) while its conntrack table is full", node, ns, late.Spec.ClusterIP), reachable, 500*time.Millisecond,
		func(ctx context.Context) (bool, string) {
			rules, err := f.Rules(ctx, node)
			if err != nil {
				return false, err.Error()
			}
			took = time.Since(created)
			return framework.HoldsIP(rules, late.Spec.ClusterIP), "not in the rules yet"
		})
	Expect(err).NotTo(HaveOccurred())
	return late, took
}

// waitRecovered waits until every url answers a new connection, and
// returns when they first all did.
func waitRecovered(ctx context.Context, src framework.Source, urls []string, timeout time.Duration) time.Time {
	var at time.Time
	err := framework.Poll(ctx, fmt.Sprintf("new connections to %v answered again", urls), timeout, 500*time.Millisecond, func(ctx context.Context) (bool, string) {
		for _, u := range urls {
			if r := f.Probe(ctx, src, framework.HTTP, u, time.Second); !r.OK {
				return false, fmt.Sprintf("%s: %v", u, r)
			}
		}
		at = time.Now()
		return true, ""
	})
	Expect(err).NotTo(HaveOccurred())
	return at
}

// checkOurMetrics: our proxier reports the table's limit and the kernel's
// drops (kube-proxy has no such metrics; the spec reads /proc for both).
func checkOurMetrics(ctx context.Context, src framework.Source, nodeIP string, limit uint64) {
	if f.Proxier != clusters.ProxierOurs {
		return
	}
	url := fmt.Sprintf("http://%s/metrics", framework.HostPort(nodeIP, 10249))
	r := f.Probe(ctx, src, framework.HTTP, url, probeWindow)
	Expect(r.OK).To(BeTrue(), "%s: %v", url, r)
	got := map[string]float64{}
	for _, line := range strings.Split(r.Answer, "\n") {
		if fields := strings.Fields(line); len(fields) == 2 && strings.HasPrefix(fields[0], "proxyproof_conntrack_") {
			v, err := strconv.ParseFloat(fields[1], 64)
			Expect(err).NotTo(HaveOccurred(), "%s: %q", url, line)
			got[fields[0]] = v
		}
	}
	Expect(got).To(HaveKeyWithValue("proxyproof_conntrack_limit", float64(limit)), "%s", url)
	Expect(got).To(HaveKeyWithValue("proxyproof_conntrack_drop_total", BeNumerically(">", 0)), "%s: the full table's drops", url)
}
