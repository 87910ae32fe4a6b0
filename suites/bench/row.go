package bench

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
)

// pollEvery is the pause between two kernel reads while waiting for the
// first sync; change and burst waits read back to back.
const pollEvery = 100 * time.Millisecond

// rowRun is one proxier in one fresh node namespace.
type rowRun struct {
	spec    Spec
	c       Case
	p       Proxier
	sc      Scale
	objs    *objects
	server  string // apiserver host:port, also dialled inside the node
	kubecfg string
	dir     string
	// log is the proxier's log, whose last errors a failed row reports.
	log    string
	prefix string
	rng    *rand.Rand
	row    *Row
	// readGap is the pause between two kernel reads while waiting for a
	// change or the burst (IPVS: the probe shares the guest's one vCPU
	// with the proxier; back-to-back reads would slow the proxier down).
	readGap time.Duration
	// changeCount is how many one-endpoint changes this row times.
	changeCount int
	// exactChange: a change is live when the chain holds exactly the
	// Service's endpoints, not merely the new one (IPVS: a virtual
	// server's real servers are added and removed one by one).
	exactChange bool
}

// run measures one row; a failure to measure ends up in Reason, an
// error only when the bench itself could not run (namespaces, files).
func (r *rowRun) run(ctx context.Context) error {
	if r.c.Mode == "ipvs" {
		return r.runInVM(ctx)
	}
	topo, err := newTopology(r.prefix)
	if err != nil {
		return err
	}
	defer topo.close()
	if err := topo.forward(r.server); err != nil {
		return err
	}
	pathDir, err := backendDir(r.dir, r.c.Backend)
	if err != nil {
		return err
	}
	k, err := newKernel(r.c, topo.node, pathDir)
	if err != nil {
		return err
	}
	defer k.close()
	cfg := filepath.Join(r.dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(r.config(r.kubecfg)), 0o644); err != nil {
		return err
	}
	start := time.Now()
	r.log = filepath.Join(r.dir, "proxier.log")
	proc, err := startProcess(r.p, topo.node, cfg, pathDir, r.log)
	if err != nil {
		return err
	}
	defer proc.stop()
	// Usage is read while it still runs: the row's whole life.
	defer r.readUsage(proc)
	if ok, err := r.measure(ctx, k, proc, start); !ok || err != nil {
		return err
	}
	r.dataplane(topo.client)
	return nil
}

// measure takes the kernel figures of a proxier started at start: first
// sync, counts, changes, burst. ok is false when the row stopped early.
func (r *rowRun) measure(ctx context.Context, k kernel, proc proxierProcess, start time.Time) (ok bool, err error) {
	chains, err := r.firstSync(ctx, k, proc, start)
	if err != nil || chains == nil {
		return false, err
	}
	klog.InfoS("First sync", "row", r.name(), "took", r.row.FirstSyncS)
	r.row.Rules, r.row.Elements, err = k.counts(ctx)
	if err != nil {
		r.row.Reason = fmt.Sprintf("counting rules: %v", err)
	}
	return r.changes(ctx, k, proc, chains) && r.burst(ctx, k, proc, chains), nil
}

func (r *rowRun) readUsage(proc proxierProcess) {
	if rss, cpu, err := proc.usage(); err == nil {
		r.row.RSSMB, r.row.CPUS = rss, cpu
	}
}

func (r *rowRun) name() string { return fmt.Sprintf("%s %s %s", r.p.Name, r.c, r.sc) }

// fail marks the row unfinished; its reason is the bench's own account
// followed by the proxier's last errors.
func (r *rowRun) fail(reason string) {
	r.row.DidNotFinish = true
	if r.row.Reason == "" {
		r.row.Reason = reason + proxierSays(r.log)
	}
	klog.InfoS("Row did not finish", "row", r.name(), "reason", r.row.Reason)
}

// config is the KubeProxyConfiguration both proxiers run from.
func (r *rowRun) config(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: %s
hostnameOverride: %s
clusterCIDR: 10.244.0.0/16
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection:
  kubeconfig: %s
iptables:
  minSyncPeriod: %s
nftables:
  minSyncPeriod: %s
ipvs:
  minSyncPeriod: %s
conntrack:
  maxPerCore: 0
  min: 0
`, r.c.Mode, nodeName, nodeIP, kubeconfig, r.spec.MinSyncPeriod, r.spec.MinSyncPeriod, r.spec.MinSyncPeriod)
}

// firstSync waits until every Service is in the kernel and returns each
// one's chain; nil (with the row marked) when it never gets there.
func (r *rowRun) firstSync(ctx context.Context, k kernel, proc proxierProcess, start time.Time) (map[string]string, error) {
	deadline := start.Add(r.spec.FirstSyncTimeout)
	for {
		got, err := k.services(ctx)
		seen := time.Now()
		if err == nil {
			present := 0
			for _, s := range r.objs.services {
				if _, ok := got[s.clusterIP]; ok {
					present++
				}
			}
			if present == len(r.objs.services) {
				r.row.FirstSyncS = seen.Sub(start).Seconds()
				return got, nil
			}
			err = fmt.Errorf("%d of %d Services in the kernel", present, len(r.objs.services))
		}
		switch {
		case proc.exited():
			r.fail(proc.exitReason())
			return nil, nil
		case seen.After(deadline):
			r.fail(fmt.Sprintf("first sync not complete after %s (the bench's last kernel read: %v)", r.spec.FirstSyncTimeout, err))
			return nil, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		time.Sleep(pollEvery)
	}
}

// changes replaces one endpoint of a random Service at a time and times
// API write -> the new endpoint's rule in that Service's chain (with
// exactChange: the chain holding exactly the Service's endpoints, the
// replaced one out).
func (r *rowRun) changes(ctx context.Context, k kernel, proc proxierProcess, chains map[string]string) bool {
	var lat, probes, writes, after []float64
	gap := r.spec.MinSyncPeriod + 100*time.Millisecond
	for i := 0; i < r.changeCount; i++ {
		time.Sleep(gap)
		s := r.objs.services[r.rng.Intn(len(r.objs.services))]
		ip := r.objs.freshIP()
		want := k.token(s, ip)
		t0 := time.Now()
		if err := r.objs.replaceEndpoint(ctx, s, i, ip); err != nil {
			r.fail(err.Error())
			return false
		}
		writes = append(writes, time.Since(t0).Seconds()*1000)
		for {
			p0 := time.Now()
			eps, err := k.endpoints(ctx, chains[s.clusterIP])
			now := time.Now()
			probes = append(probes, now.Sub(p0).Seconds()*1000)
			if err == nil && eps[want] && (!r.exactChange || sameTokens(eps, k, s)) {
				lat = append(lat, now.Sub(t0).Seconds()*1000)
				after = append(after, lat[len(lat)-1]-writes[len(writes)-1])
				break
			}
			if proc.exited() {
				r.fail(proc.exitReason())
				return false
			}
			if now.Sub(t0) > r.spec.ChangeTimeout {
				r.fail(fmt.Sprintf("change %d (service %s endpoint %s) not in the kernel after %s (the bench's last kernel read: %v)", i, s.name, ip, r.spec.ChangeTimeout, err))
				r.summarizeChanges(lat, probes, writes, after)
				return false
			}
			if ctx.Err() != nil {
				return false
			}
			time.Sleep(r.readGap)
		}
	}
	r.summarizeChanges(lat, probes, writes, after)
	return true
}

func (r *rowRun) summarizeChanges(lat, probes, writes, after []float64) {
	s := sortedCopy(lat)
	r.row.Changes = len(s)
	r.row.ChangeP50Ms = percentile(s, 50)
	r.row.ChangeP99Ms = percentile(s, 99)
	r.row.ProbeMs = percentile(sortedCopy(probes), 50)
	w := sortedCopy(writes)
	r.row.WriteP50Ms, r.row.WriteP99Ms = percentile(w, 50), percentile(w, 99)
	a := sortedCopy(after)
	r.row.AfterWriteP50Ms, r.row.AfterWriteP99Ms = percentile(a, 50), percentile(a, 99)
}

// burst is a rolling update: BurstRounds endpoint replacements in each of
// BurstServices Services, written back to back, timed until every one of
// those chains holds exactly the final endpoints.
func (r *rowRun) burst(ctx context.Context, k kernel, proc proxierProcess, chains map[string]string) bool {
	time.Sleep(r.spec.MinSyncPeriod + 100*time.Millisecond)
	picked := r.rng.Perm(len(r.objs.services))[:r.spec.BurstServices]
	t0 := time.Now()
	errc := make(chan error, len(picked))
	for _, i := range picked {
		s := r.objs.services[i]
		go func() {
			for round := 0; round < r.spec.BurstRounds; round++ {
				if err := r.objs.replaceEndpoint(ctx, s, round, r.objs.freshIP()); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range picked {
		if err := <-errc; err != nil {
			r.fail(err.Error())
			return false
		}
	}
	for {
		converged, err := true, error(nil)
		for _, i := range picked {
			s := r.objs.services[i]
			var eps map[string]bool
			eps, err = k.endpoints(ctx, chains[s.clusterIP])
			if err != nil || !sameTokens(eps, k, s) {
				converged = false
				break
			}
		}
		if converged {
			r.row.BurstS = time.Since(t0).Seconds()
			return true
		}
		switch {
		case proc.exited():
			r.fail(proc.exitReason())
			return false
		case time.Since(t0) > r.spec.ChangeTimeout:
			r.fail(fmt.Sprintf("burst not converged after %s (the bench's last kernel read: %v)", r.spec.ChangeTimeout, err))
			return false
		case ctx.Err() != nil:
			return false
		}
		time.Sleep(r.readGap)
	}
}

// sameTokens: the chain holds exactly s's current endpoints.
func sameTokens(eps map[string]bool, k kernel, s *service) bool {
	ips := s.ips()
	if len(eps) != len(ips) {
		return false
	}
	for _, ip := range ips {
		if !eps[k.token(s, ip)] {
			return false
		}
	}
	return true
}
