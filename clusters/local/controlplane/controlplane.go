package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// ControlPlane is a running control plane. Its exported fields are set by
// Start and read-only afterwards.
type ControlPlane struct {
	// Spec is the spec Start ran with, defaults filled in.
	Spec Spec
	// Binaries are the executables it runs.
	Binaries Paths
	// Server is the apiserver URL, https://127.0.0.1:PORT.
	Server string
	// Kubeconfig is the admin (system:masters) kubeconfig: point kubectl here.
	Kubeconfig string
	// ProxierKubeconfig authenticates as system:kube-proxy, the identity
	// (and RBAC) upstream kube-proxy has; ours and upstream's share it.
	ProxierKubeconfig string
	// CAFile is the cluster CA certificate (PEM).
	CAFile string
	// EtcdURL is etcd's client URL (plain HTTP on loopback).
	EtcdURL string

	pki      *pki
	procs    []*process // start order: etcd, apiserver, controller-manager, scheduler
	stopOnce sync.Once
	stopErr  error
}

// Component describes one running process, for logs and measurements.
type Component struct {
	Name   string
	PID    int
	Log    string // its log file
	Health string // the URL Start waited on
}

// startAttempts bounds retries when a chosen port was taken between
// choosing it and the component binding it.
const startAttempts = 3

// stopGrace is how long a component gets between SIGTERM and SIGKILL.
const stopGrace = 15 * time.Second

// Start writes the state under spec.Dir and starts etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, returning once every one of
// them reports healthy. Any earlier state in spec.Dir is replaced. On
// error nothing is left running.
func Start(ctx context.Context, spec Spec) (*ControlPlane, error) {
	spec = spec.withDefaults()
	if err := spec.validate(); err != nil {
		return nil, err
	}
	bins := spec.Binaries
	if bins == nil {
		b, err := Binaries(spec.Version)
		if err != nil {
			return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
		}
		bins = &b
	}
	ctx, cancel := context.WithTimeoutCause(ctx, spec.ReadyTimeout,
		fmt.Errorf("control plane %q not ready within %s", spec.Name, spec.ReadyTimeout))
	defer cancel()
	began := time.Now()
	for attempt := 1; ; attempt++ {
		cp, err := start(ctx, spec, *bins)
		if err == nil {
			klog.InfoS("Control plane ready", "cluster", spec.Name, "server", cp.Server, "kubeconfig", cp.Kubeconfig, "took", time.Since(began))
			return cp, nil
		}
		if attempt == startAttempts || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
		klog.InfoS("Control plane port taken meanwhile, retrying with new ports", "cluster", spec.Name, "attempt", attempt, "err", err)
	}
}

func start(ctx context.Context, spec Spec, bins Paths) (_ *ControlPlane, err error) {
	dir := spec.Dir
	if err := resetDir(dir); err != nil {
		return nil, fmt.Errorf("control plane %q: state dir %s: %w", spec.Name, dir, err)
	}
	p, err := freePorts()
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	sans, err := apiserverSANs(spec)
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	k, err := writePKI(dir, spec.Name, sans)
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	cp := &ControlPlane{
		Spec:              spec,
		Binaries:          bins,
		Server:            url("https", p.apiserver),
		Kubeconfig:        filepath.Join(dir, "admin.kubeconfig"),
		ProxierKubeconfig: filepath.Join(dir, "proxier.kubeconfig"),
		CAFile:            k.caFile,
		EtcdURL:           url("http", p.etcdClient),
		pki:               k,
	}
	admin, err := cp.writeKubeconfigs()
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	client, err := healthClient(k.ca, admin)
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	defer func() {
		if err != nil {
			_ = cp.Stop()
		}
	}()
	etcd, rest := components(spec, bins, dir, k, p)
	// etcd, then the apiserver, each healthy before the next: a component
	// started early only fills its log with retries.
	if err := cp.run(ctx, client, etcd); err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	if err := cp.run(ctx, client, rest[0]); err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	if err := cp.runTogether(ctx, client, rest[1:]); err != nil {
		return nil, fmt.Errorf("control plane %q: %w", spec.Name, err)
	}
	return cp, nil
}

func (cp *ControlPlane) run(ctx context.Context, client *http.Client, c component) error {
	proc, err := startProcess(cp.Spec.Dir, c.name, c.bin, c.args, cp.Spec.OutliveCaller)
	if err != nil {
		return err
	}
	proc.health = c.health
	cp.procs = append(cp.procs, proc)
	return waitHealthy(ctx, client, proc, c.health)
}

// runTogether starts cs at once and waits for all of them.
func (cp *ControlPlane) runTogether(ctx context.Context, client *http.Client, cs []component) error {
	var procs []*process
	for _, c := range cs {
		proc, err := startProcess(cp.Spec.Dir, c.name, c.bin, c.args, cp.Spec.OutliveCaller)
		if err != nil {
			return err
		}
		proc.health = c.health
		cp.procs = append(cp.procs, proc)
		procs = append(procs, proc)
	}
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitHealthy(ctx, client, procs[i], cs[i].health)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (cp *ControlPlane) writeKubeconfigs() (admin keyPair, err error) {
	ca, name, server := cp.pki.ca, cp.Spec.Name, cp.Server
	admin, err = ca.issue(certRequest{commonName: adminUser, groups: []string{adminGroup}})
	if err != nil {
		return keyPair{}, err
	}
	if err := writeKubeconfig(cp.Kubeconfig, name, server, ca.certPEM, adminUser, admin); err != nil {
		return keyPair{}, err
	}
	for file, user := range map[string]string{
		"kube-controller-manager.kubeconfig": controllerManagerUser,
		"kube-scheduler.kubeconfig":          schedulerUser,
		"proxier.kubeconfig":                 proxierUser,
	} {
		if err := issueKubeconfig(ca, filepath.Join(cp.Spec.Dir, file), name, server, user); err != nil {
			return keyPair{}, err
		}
	}
	return admin, nil
}

// NodeKubeconfig issues a kubeconfig for node agent nodeName, as the
// kubelet's identity system:node:NAME in group system:nodes: the Node
// authorizer and NodeRestriction then let it create and update only its
// own Node and the pods bound to it. It returns the file's path.
func (cp *ControlPlane) NodeKubeconfig(nodeName string) (string, error) {
	if nodeName == "" || strings.ContainsAny(nodeName, "/ ") {
		return "", fmt.Errorf("node kubeconfig: invalid node name %q", nodeName)
	}
	path := filepath.Join(cp.Spec.Dir, "nodes", nodeName+".kubeconfig")
	if err := issueKubeconfig(cp.pki.ca, path, cp.Spec.Name, cp.Server, "system:node:"+nodeName, nodeGroup); err != nil {
		return "", fmt.Errorf("node %s: %w", nodeName, err)
	}
	return path, nil
}

// Components lists the running processes in start order.
func (cp *ControlPlane) Components() []Component {
	out := make([]Component, 0, len(cp.procs))
	for _, p := range cp.procs {
		out = append(out, Component{Name: p.name, PID: p.pid(), Log: p.log, Health: p.health})
	}
	return out
}

// Stop terminates the components, controllers first and etcd last, and
// waits for each to exit. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		var errs []error
		for i := len(cp.procs) - 1; i >= 0; i-- {
			// A component that crashed earlier is worth reporting.
			if err := cp.procs[i].stop(stopGrace); err != nil {
				errs = append(errs, err)
			}
		}
		cp.stopErr = errors.Join(errs...)
		klog.InfoS("Control plane stopped", "cluster", cp.Spec.Name)
	})
	return cp.stopErr
}

// resetDir prepares dir for a fresh control plane: it refuses while a
// previous one there still runs, and removes only what Start writes.
func resetDir(dir string) error {
	if pids, _ := filepath.Glob(filepath.Join(dir, "pids", "*.pid")); len(pids) > 0 {
		for _, f := range pids {
			if running(f) {
				return fmt.Errorf("a control plane still runs there (%s); stop it first (StopDir)", f)
			}
		}
	}
	for _, sub := range []string{"etcd", "pki", "logs", "pids", "nodes"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.kubeconfig"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	for _, sub := range []string{"logs", "pids", "nodes"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// running reports whether a pid file names a live process still running
// the recorded binary.
func running(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	var pid int
	var bin string
	if _, err := fmt.Sscanf(string(b), "%d %s", &pid, &bin); err != nil {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe == bin && Alive(pid)
}

// freePorts asks the kernel for five unused loopback ports. They are
// released before the components bind them; Start retries on the rare
// collision.
func freePorts() (ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var nums []int
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return ports{}, fmt.Errorf("free loopback port: %w", err)
		}
		ls = append(ls, l)
		nums = append(nums, l.Addr().(*net.TCPAddr).Port)
	}
	return ports{etcdClient: nums[0], etcdPeer: nums[1], apiserver: nums[2], controllerManager: nums[3], scheduler: nums[4]}, nil
}
