package local

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/proxier/kernelvm"
)

var _ clusters.ProxierRestarter = seamCluster{}

// restartMu serialises the record updates of concurrent restarts (one per
// node, in parallel) within this process.
var restartMu sync.Mutex

// proxierStopGrace is what a proxier gets between SIGTERM and SIGKILL on
// a restart (as destroy gives it).
const proxierStopGrace = 10 * time.Second

// RestartProxier stops node's proxier, applies change (kept in the record
// for later restarts), starts it again and returns when its /healthz
// answers 200. A namespace node's proxier is a process of this host; a VM
// node's runs inside its VM and is restarted through the node's exec.
func (c *Cluster) RestartProxier(ctx context.Context, node string, change clusters.ProxierChange) (clusters.Restarted, error) {
	var done clusters.Restarted
	i := slices.IndexFunc(c.rec.Nodes, func(n NodeStatus) bool { return n.Name == node })
	if i < 0 {
		return done, fmt.Errorf("cluster %s: no node %q", c.Name(), node)
	}
	restartMu.Lock()
	old := c.rec.Nodes[i]
	n, err := applyChange(old, change)
	if err == nil {
		c.rec.Nodes[i] = n
		err = writeRecord(c.paths.record(), c.rec)
	}
	restartMu.Unlock()
	if err != nil {
		return done, fmt.Errorf("cluster %s: node %s: restart proxier: %w", c.Name(), node, err)
	}
	kc := filepath.Join(c.paths.kubeconfigs(), "proxier.kubeconfig")
	d := &daemon{role: "proxier-" + n.Name, log: filepath.Join(c.paths.nodeDir(n.Name), "proxier.log")}
	cleanup := ""
	if change.Cleanup {
		cleanup = old.Mode
	}
	switch {
	case n.VM:
		done.CleanupFailed, err = c.restartVMProxier(ctx, n, kc, cleanup)
	default:
		err = stopPidFiles(filepath.Join(c.paths.pids(), "proxier-"+n.Name+".pid"), proxierStopGrace)
		if err == nil && cleanup != "" {
			done.CleanupFailed = c.runCleanup(ctx, n, cleanup)
		}
		if err == nil {
			d, err = c.startProxier(i, c.rec.Proxier, kc)
		}
	}
	if err == nil {
		err = waitProxierHealthy(ctx, n, c.hostSide(n), d)
	}
	if err != nil {
		return done, fmt.Errorf("cluster %s: node %s: restart proxier: %w", c.Name(), node, err)
	}
	done.Served = time.Now()
	return done, nil
}

// applyChange is n with change applied, or why it cannot be: a mode needs
// the kind of node it runs on (a VM only for what the host kernel lacks).
func applyChange(n NodeStatus, change clusters.ProxierChange) (NodeStatus, error) {
	if change.Mode != "" && change.Mode != n.Mode {
		if err := kernelSupports(change.Mode); err != nil {
			return n, err
		}
		// A VM node's kernel has every mode; a namespace node cannot move
		// into the VM.
		if RunsInVM(change.Mode) && !n.VM {
			return n, fmt.Errorf("mode %s -> %s: the node would have to move from a namespace into the kernel VM; make a cluster with that mode (or %s=vm) instead", n.Mode, change.Mode, clusters.EnvNodeKernels)
		}
		n.Mode = change.Mode
	}
	if change.Scheduler != "" {
		if !slices.Contains(clusters.IPVSSchedulers, change.Scheduler) {
			return n, fmt.Errorf("IPVS scheduler %q: want one of %v", change.Scheduler, clusters.IPVSSchedulers)
		}
		n.Scheduler = change.Scheduler
	}
	if change.Flags != nil {
		n.ProxierFlags = change.Flags
	}
	return n, nil
}

func (p paths) vmProxierPid(node string) string {
	return filepath.Join(p.nodeDir(node), "proxier.vmpid")
}

// vmProxierStart is the shell line that starts VM node n's proxier in the
// background with its output in its log, and writes its pid (the VM's)
// where restartVMProxier finds it.
func (c *Cluster) vmProxierStart(n NodeStatus, cfg string) string {
	return fmt.Sprintf("%s --config %s --v=2 %s >>%s 2>&1 </dev/null & echo $! >%s",
		kernelvm.ShellQuote(c.rec.Proxier), kernelvm.ShellQuote(cfg), shellWords(n.ProxierFlags),
		kernelvm.ShellQuote(filepath.Join(c.paths.nodeDir(n.Name), "proxier.log")), kernelvm.ShellQuote(c.paths.vmProxierPid(n.Name)))
}

// cleanupArgs is the proxier's --cleanup in mode, as an operator runs it
// between stopping kube-proxy and starting it in another mode. Flags, not
// the configuration file: kube-proxy watches a --config file with inotify
// even to clean up, and failed so ("too many open files") on a machine
// at its inotify instance limit; cleanup needs nothing from the file here.
func (c *Cluster) cleanupArgs(mode string) []string {
	return []string{c.rec.Proxier, "--cleanup", "--proxy-mode=" + mode, "--v=2"}
}

// runCleanup runs the proxier's --cleanup in mode (the old one) on node
// n, in its namespace or its VM: CleanupFailure when it exits non-zero,
// "" when it succeeds (or ctx ended: the start after it says so).
func (c *Cluster) runCleanup(ctx context.Context, n NodeStatus, mode string) string {
	args := c.cleanupArgs(mode)
	out, err := c.ExecOnNode(ctx, n.Name, args...)
	if err == nil || ctx.Err() != nil {
		return ""
	}
	return clusters.CleanupFailure(shellWords(args), out)
}

// restartVMProxier stops the proxier inside VM node n (SIGTERM, then
// SIGKILL after the grace), runs its --cleanup in mode cleanup when that
// is set (CleanupFailure when it fails: the start follows all the same),
// and starts it with its new configuration. A dead proxier stays a
// zombie there (its parent, the agent, does not reap it), so "gone" is:
// no process, or state Z.
func (c *Cluster) restartVMProxier(ctx context.Context, n NodeStatus, kubeconfig, cleanup string) (cleanupFailed string, err error) {
	cfg, err := c.writeProxierConfig(n, kubeconfig)
	if err != nil {
		return "", err
	}
	steps := int(proxierStopGrace / (100 * time.Millisecond))
	stop := fmt.Sprintf(`pid=$(cat %s) || exit 1
kill $pid 2>/dev/null
i=0
while st=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null) && [ "$st" != Z ]; do
  i=$((i+1)); [ $i -eq %d ] && kill -9 $pid; sleep 0.1
done
`, kernelvm.ShellQuote(c.paths.vmProxierPid(n.Name)), steps)
	exec := c.execClient(n)
	if _, err := exec.Exec(ctx, "", []string{"/bin/sh", "-c", stop}); err != nil {
		return "", fmt.Errorf("stop in the VM: %w", err)
	}
	if cleanup != "" {
		cleanupFailed = c.runCleanup(ctx, n, cleanup)
	}
	if _, err := exec.Exec(ctx, "", []string{"/bin/sh", "-c", c.vmProxierStart(n, cfg)}); err != nil {
		return cleanupFailed, fmt.Errorf("start in the VM: %w", err)
	}
	return cleanupFailed, nil
}

var _ clusters.ProxierExtensions = seamCluster{}

// ProxierExtensions are what our proxier declares; upstream kube-proxy and
// a proxier given by path declare none.
func (c *Cluster) ProxierExtensions() []string {
	if c.rec.Spec.Proxier == ProxierOurs {
		return []string{clusters.ExtensionIPVSSchedulerAnnotation}
	}
	return nil
}
