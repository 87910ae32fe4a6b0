//go:build e2e

package services

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/reports/entry"
	"github.com/proxyproof/proxyproof/suites/framework"
	"github.com/proxyproof/proxyproof/suites/framework/batch"
)

// The scaled churn: the seed story's cluster had thousands of Services
// while a few of them rolled, and its breakage came from rule reloads
// under that load. Programming latency is what shows it.

// idleProgrammed bounds the wait for the idle Services to reach every
// node's rules: upstream kube-proxy in ipvs mode in the kernel VM re-walks
// every Service at each sync.
const idleProgrammed = 15 * time.Minute

// rollScaled creates c's idle Services, then rolls c.Services careful
// Deployments at once under load and records what the clients saw and
// the programming latency of every rolled Service on every node.
func rollScaled(ctx SpecContext, ns string, src corev1.Pod, c framework.Churn) churnResult {
	// A kernel-VM node among the nodes sets the pace, on a mixed cluster
	// too.
	vm := f.KernelVMNodes()
	idle := c.IdleOn(vm)
	idleNS, err := f.CreateNamespace(ctx, "churn-idle")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(f.DeleteNamespace(ctx, idleNS)).To(Succeed()) })
	began := time.Now()
	svcs, err := f.CreateIdleServices(ctx, idleNS, idle)
	Expect(err).NotTo(HaveOccurred())
	created := time.Since(began)
	if idle > 0 {
		waitIdleProgrammed(ctx, svcs)
	}
	f.RecordFigure(entry.Figure{Name: "churn scaled idle services", Title: fmt.Sprintf("%d idle Services: created through the API, -> in every node's rules (first, middle and last)", idle),
		Unit: "s", Values: []float64{created.Seconds(), time.Since(began).Seconds()}})

	client := f.FromPod(src)
	replicas := max(2, c.ReplicasOn(vm)/c.Services)
	var watched []framework.Watched
	var targets []string
	for i := range c.Services {
		r := rollout{name: fmt.Sprintf("scaled-%d", i), careful: true}
		svc := deployRolled(ctx, ns, client, c, r, replicas)
		targets = append(targets, serviceURL(svc.Spec.ClusterIP, 80, "hostname"))
		watched = append(watched, framework.Watched{Service: svc, Port: "http"})
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for i := range watched {
		watched[i].Timeline, err = f.WatchEndpoints(wctx, ns, watched[i].Service.Name)
		Expect(err).NotTo(HaveOccurred())
	}
	origin := time.Now()
	latCtx, stopLatency := context.WithCancel(ctx)
	var latency framework.Latency
	latDone := make(chan struct{})
	go func() {
		defer close(latDone)
		latency = f.ProgrammingLatency(latCtx, watched, origin.Add(time.Second))
	}()
	var rollBegan time.Time
	var took time.Duration
	perTarget := underLoad(ctx, client, targets, c, func() {
		rollBegan = time.Now()
		var wg sync.WaitGroup
		for _, w := range watched {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				rollDeployment(ctx, ns, w.Service.Name, replicas)
			}()
		}
		wg.Wait()
		took = time.Since(rollBegan)
	})
	stopLatency()
	<-latDone
	stopWatch()

	res := churnResult{byClass: map[string]int{}}
	var all []batch.Batch
	for i, bs := range perTarget {
		r := classify(bs, watched[i].Timeline)
		for k, v := range r.byClass {
			res.byClass[k] += v
		}
		res.failures = append(res.failures, r.failures...)
		all = append(all, bs...)
	}
	name := fmt.Sprintf("scaled (%d Services x %d replicas, %d idle)", c.Services, replicas, idle)
	recordChurn(name, origin, rollBegan, took, res, all, watched[0].Timeline, latency)
	recordLatencyPercentiles(name, latency)
	return res
}

// waitIdleProgrammed waits until every node's rules hold the first, the
// middle and the last idle Service's endpoint.
func waitIdleProgrammed(ctx context.Context, svcs []*corev1.Service) {
	var sample []framework.Watched
	var ips []string
	for _, i := range []int{0, len(svcs) / 2, len(svcs) - 1} {
		sample = append(sample, framework.Watched{Service: svcs[i], Port: "http"})
		ips = append(ips, framework.IdleEndpoint(i))
	}
	for _, node := range f.NodeNames() {
		Expect(framework.Poll(ctx, fmt.Sprintf("%d idle Services in %s's rules", len(svcs), node), idleProgrammed, time.Second, func(ctx context.Context) (bool, string) {
			rules, err := f.ServiceRules(ctx, node, sample)
			if err != nil {
				return false, err.Error()
			}
			for _, ip := range ips {
				if !framework.HoldsIP(rules, ip) {
					return false, "no rule for " + ip + " yet"
				}
			}
			return true, ""
		})).To(Succeed())
	}
}

// recordLatencyPercentiles records p50, p99 and max of the programming
// latency over every node, the figure compared across modes and proxiers.
func recordLatencyPercentiles(name string, latency framework.Latency) {
	var ms []float64
	for _, l := range latency.ByNode {
		for _, d := range l {
			ms = append(ms, float64(d.Microseconds())/1000)
		}
	}
	if len(ms) == 0 {
		return
	}
	slices.Sort(ms)
	p := map[string]float64{"p50": entry.Percentile(ms, 50), "p99": entry.Percentile(ms, 99), "max": ms[len(ms)-1]}
	f.RecordFigure(entry.Figure{Name: "churn scaled programming latency", Title: fmt.Sprintf("%s rollout: endpoint ready in its EndpointSlice -> its IP in the node's rules for its Service, every node (%d endpoints; by %s)", name, len(ms), latency.Methods()), Unit: "ms", Percentiles: p})
	AddReportEntry("churn scaled programming latency p50/p99 ms", fmt.Sprintf("%.0f / %.0f (%d endpoints)", p["p50"], p["p99"], len(ms)))
}
