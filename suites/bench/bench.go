package bench

import (
	"context"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
)

// NoteShared is said with every figure: the machine is not ours alone.
const NoteShared = "measured on a shared 2-core machine with other workloads running: compare rows of one run, not absolute figures across runs"

// noProbeReason is why IPVS rows are not measured without Spec.Probe.
const noProbeReason = "not measured: ipvs runs in the kernel VM (no ip_vs on this host), read through the bench's in-VM probe, and no probe binary was given"

// Run measures every scale x case x proxier, one after the other, and
// writes Dir/bench.json and its report after each row (a run cut short keeps what it
// measured). Rows that could not be measured say why; the error is for a
// bench that could not run at all (no control plane, no namespaces).
func Run(ctx context.Context, spec Spec) (*Report, error) {
	spec = spec.withDefaults()
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	rep := &Report{Started: time.Now().UTC(), Host: host, Note: NoteShared, Settings: Settings{
		Changes: spec.Changes, IPVSChanges: spec.IPVSChanges, BurstServices: spec.BurstServices,
		BurstEndpoints: spec.BurstServices * spec.BurstRounds, Connections: spec.Connections,
		FirstSyncTimeout: spec.FirstSyncTimeout.Seconds(), MinSyncPeriod: spec.MinSyncPeriod.Seconds(),
	}}
	for _, p := range spec.plan() {
		if err := runScale(ctx, spec, p.scale, p.cases, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// runScale starts a control plane, creates the objects once and runs
// every row against them.
func runScale(ctx context.Context, spec Spec, sc Scale, cases []Case, rep *Report) error {
	dir := filepath.Join(spec.Dir, sc.String())
	cp, err := controlplane.Start(ctx, controlplane.Spec{
		Name: "bench", Dir: filepath.Join(dir, "controlplane"), AdvertiseAddress: nodeIP,
	})
	if err != nil {
		return fmt.Errorf("scale %s: %w", sc, err)
	}
	defer cp.Stop()
	u, err := url.Parse(cp.Server)
	if err != nil {
		return fmt.Errorf("scale %s: apiserver URL %q: %w", sc, cp.Server, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		return fmt.Errorf("scale %s: %w", sc, err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("scale %s: %w", sc, err)
	}
	began := time.Now()
	objs, err := createObjects(ctx, client, sc, nodeIP)
	if err != nil {
		return fmt.Errorf("scale %s: create objects: %w", sc, err)
	}
	klog.InfoS("Objects created", "scale", sc.String(), "took", time.Since(began))
	// Each row gets the same seed: every proxier sees the same sequence
	// of changed Services and probed ClusterIPs.
	for ci, c := range cases {
		for pi, p := range spec.Proxiers {
			row := Row{Mode: c.Mode, Backend: c.Backend, Proxier: p.Name, Services: sc.Services, Endpoints: sc.Endpoints}
			if c.Mode == "ipvs" && spec.Probe == "" {
				row.NotMeasured, row.Reason = true, noProbeReason
			} else {
				rr := &rowRun{
					spec: spec, c: c, p: p, sc: sc, objs: objs, server: u.Host,
					kubecfg: cp.ProxierKubeconfig, dir: filepath.Join(dir, fmt.Sprintf("%s-%s", c.Mode+backendSuffix(c), p.Name)),
					prefix: fmt.Sprintf("bench%d-%d%d", os.Getpid(), ci, pi), rng: rand.New(rand.NewSource(spec.Seed)), row: &row,
					changeCount: spec.Changes,
				}
				if err := os.MkdirAll(rr.dir, 0o755); err != nil {
					return err
				}
				klog.InfoS("Row starts", "row", rr.name())
				if err := rr.run(ctx); err != nil {
					return fmt.Errorf("row %s: %w", rr.name(), err)
				}
			}
			rep.Rows = append(rep.Rows, row)
			if err := writeRun(spec.Dir, rep, spec.Command); err != nil {
				return err
			}
		}
	}
	return nil
}

func backendSuffix(c Case) string {
	if c.Backend == "" {
		return ""
	}
	return "-" + c.Backend
}
