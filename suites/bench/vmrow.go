package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/kernelvm"
)

// An IPVS row runs its proxier in the kernel VM (this host has no ip_vs):
// the VM is the node, nodeIP on its one NIC, a tap in a fresh host
// namespace (the wire) that holds wireIP and forwards the apiserver there.
// The row's directory is shared read-write at its own path, so config,
// kubeconfig and log are where the host wrote and reads them. The host
// cannot setns into the guest, so the probe (ProbeMain) runs beside the
// proxier and answers reads of the guest kernel over the tap. Every figure
// is the guest's under TCG: compare IPVS rows with IPVS rows only.
const (
	wireIP    = "192.168.77.254"
	wireTap   = "tap0"
	probePort = 10300
	// vmBootTimeout bounds boot to the probe's first answer (~5 s idle;
	// more on a busy machine).
	vmBootTimeout = 3 * time.Minute
	vmMemoryMB    = 1024
	// vmReadGap spaces the probe's reads: one costs the guest ~5-8 ms of
	// its one vCPU, so back to back they would halve the proxier's.
	vmReadGap = 20 * time.Millisecond
)

// VMNote is said with IPVS rows.
const VMNote = "ipvs rows: both proxiers in the kernel VM (qemu TCG, one vCPU, 10-50x slower than native), read over a probe in the guest; compare VM to VM only; no connect figures"

func (r *rowRun) runInVM(ctx context.Context) error {
	r.row.VM = true
	r.readGap, r.changeCount, r.exactChange = vmReadGap, r.spec.IPVSChanges, true
	dir := r.dir // absolute (Spec.validate): the guest mounts it at this path
	topo, err := newWire(r.prefix)
	if err != nil {
		return err
	}
	defer topo.close()
	_, port, err := net.SplitHostPort(r.server)
	if err != nil {
		return fmt.Errorf("apiserver address %q: %w", r.server, err)
	}
	wireServer := net.JoinHostPort(wireIP, port)
	if err := topo.forwardTo(wireServer, r.server); err != nil {
		return err
	}
	kubecfg := filepath.Join(dir, "kubeconfig")
	if err := rewriteKubeconfig(r.kubecfg, kubecfg, "https://"+wireServer); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(r.config(kubecfg)), 0o644); err != nil {
		return err
	}
	r.log = filepath.Join(dir, "proxier.log")
	args := []string{ProbeCommand, "--listen", net.JoinHostPort(nodeIP, strconv.Itoa(probePort)), "--log", r.log, "--", r.p.Path}
	args = append(args, r.p.Args...)
	if !r.p.NoConfig {
		args = append(args, "--config", cfg, "--v=1")
	}
	vmCtx, cancel := context.WithCancel(ctx)
	probe := newProbeClient(topo.node, net.JoinHostPort(nodeIP, strconv.Itoa(probePort)))
	proc := &vmProcess{probe: probe, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(proc.done)
		proc.res, proc.err = kernelvm.Run(vmCtx, kernelvm.Options{
			Binary: r.spec.Probe, Args: args, Dir: "/",
			Timeout: -1, MemoryMB: vmMemoryMB,
			TapNetNS: topo.node, TapName: wireTap,
			GuestAddress: nodeIP + "/24", GuestGateway: wireIP,
			Shares:  []kernelvm.Share{{HostPath: dir, GuestPath: dir}},
			WorkDir: dir,
		})
	}()
	defer proc.stop()
	k := &ipvsKernel{probe: probe, want: r.sc.Endpoints}
	defer k.close()
	start, ok := r.waitForProbe(ctx, proc)
	if !ok {
		return ctx.Err()
	}
	defer r.readUsage(proc)
	_, err = r.measure(ctx, k, proc, start)
	return err
}

// waitForProbe waits for the probe's first answer and returns when the
// proxier started, on this clock: now less the guest's time since.
func (r *rowRun) waitForProbe(ctx context.Context, proc *vmProcess) (time.Time, bool) {
	t0 := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rep, err := proc.probe.get(pctx, "/counts")
		cancel()
		if err == nil || rep.ElapsedS > 0 {
			klog.InfoS("Kernel VM up", "row", r.name(), "boot", time.Since(t0)-time.Duration(rep.ElapsedS*float64(time.Second)))
			return time.Now().Add(-time.Duration(rep.ElapsedS * float64(time.Second))), true
		}
		switch {
		case proc.vmEnded():
			r.fail(proc.exitReason())
			return time.Time{}, false
		case time.Since(t0) > vmBootTimeout:
			r.fail(fmt.Sprintf("kernel VM probe not answering after %s (%v)", vmBootTimeout, err))
			return time.Time{}, false
		case ctx.Err() != nil:
			return time.Time{}, false
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// newWire is the host side of an IPVS row: one namespace holding the
// VM's tap (made here so its address is set before qemu opens it).
func newWire(prefix string) (_ *topology, err error) {
	t := &topology{node: prefix + "w"}
	t.names = []string{t.node}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	for _, s := range [][]string{
		{"ip", "netns", "add", t.node},
		{"ip", "-n", t.node, "link", "set", "lo", "up"},
		{"ip", "-n", t.node, "tuntap", "add", "dev", wireTap, "mode", "tap"},
		{"ip", "-n", t.node, "addr", "add", wireIP + "/24", "dev", wireTap},
		{"ip", "-n", t.node, "link", "set", wireTap, "up"},
	} {
		if err := run(s[0], s[1:]...); err != nil {
			return t, err
		}
	}
	return t, nil
}

// rewriteKubeconfig writes from's kubeconfig to to with every cluster at
// server. The apiserver's certificate names 127.0.0.1, not the wire's
// address, so the client is told to verify that name instead.
func rewriteKubeconfig(from, to, server string) error {
	cfg, err := clientcmd.LoadFromFile(from)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", from, err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
		c.TLSServerName = "127.0.0.1"
	}
	if err := clientcmd.WriteToFile(*cfg, to); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", to, err)
	}
	return nil
}
