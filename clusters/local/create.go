package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
)

// stopGrace is what a process gets between SIGTERM and SIGKILL.
const stopGrace = 15 * time.Second

// ErrAlreadyUp is wrapped by Create's error when the name is taken.
var ErrAlreadyUp = errors.New("cluster already up")

// alreadyUp says what to do about it and matches ErrAlreadyUp.
type alreadyUp struct{ msg string }

func (e alreadyUp) Error() string { return e.msg }
func (e alreadyUp) Unwrap() error { return ErrAlreadyUp }

// Create brings a cluster up and returns once every node is Ready with a
// podCIDR and every proxier answers /healthz. A cluster of that name that
// is up is refused; what a crashed run of that name left (processes,
// namespaces, state) is cleaned first. On error nothing is left.
func Create(ctx context.Context, spec Spec) (_ *Cluster, err error) {
	spec = spec.withDefaults()
	if err := spec.validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	p := paths{spec.StateDir}
	if err := claim(ctx, spec.Name, p); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			// A fresh context: the failure may be ctx's own deadline.
			if derr := destroy(context.Background(), spec.Name, p); derr != nil {
				klog.ErrorS(derr, "Cleaning up the failed cluster", "cluster", spec.Name)
			}
		}
	}()
	// The build has a bound of its own: on a cold Go build cache it takes
	// minutes, which must not spend the readiness budget below (a fresh
	// machine's first cluster failed that way).
	if err := buildPrograms(ctx, spec.SourceDir, p.bin(), spec.BuildTimeout); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", spec.Name, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, spec.ReadyTimeout,
		fmt.Errorf("cluster %s not ready within %s", spec.Name, spec.ReadyTimeout))
	defer cancel()
	c := &Cluster{paths: p, rec: record{Spec: spec}}
	if err := c.create(ctx); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", spec.Name, err)
	}
	klog.InfoS("Cluster ready", "cluster", spec.Name, "nodes", len(spec.Nodes), "took", time.Since(began).Round(time.Millisecond), "kubeconfig", c.Kubeconfig())
	return c, nil
}

// claim refuses a name that is up or being created by a live process,
// cleans a crashed run's leftovers and marks the state dir as being
// created by us, all under a lock on the state root.
func claim(ctx context.Context, name string, p paths) error {
	root := filepath.Dir(p.dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("cluster %s: state root: %w", name, err)
	}
	unlock, err := lockDir(root)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	defer unlock()
	if since, up := upSince(p); up {
		return alreadyUp{fmt.Sprintf("cluster %s is already up (since %s); run make cluster-down NAME=%s",
			name, since.Local().Format(time.DateTime), name)}
	}
	if pid := creatingPid(p); pid != 0 {
		return alreadyUp{fmt.Sprintf("cluster %s is being created by process %d; wait for it or run make cluster-down NAME=%s", name, pid, name)}
	}
	if err := destroy(ctx, name, p); err != nil {
		return fmt.Errorf("cluster %s: cleaning what an earlier run left: %w", name, err)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("cluster %s: state dir: %w", name, err)
	}
	return os.WriteFile(p.creating(), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// lockDir takes an exclusive flock on a directory: the lock needs no
// file of its own, so none is left behind.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (c *Cluster) create(ctx context.Context) error {
	spec := c.rec.Spec
	cp, err := c.startControlPlane(ctx)
	if err != nil {
		return err
	}
	c.rec.Server = cp.Server
	proxier, err := proxierBinary(spec.Proxier, c.paths.bin())
	if err != nil {
		return err
	}
	c.rec.Proxier = proxier
	for i, n := range spec.Nodes {
		st := NodeStatus{Name: n.Name, Mode: n.Mode, IP: nodeIP(i), Namespace: nodeNS(spec.Name, n.Name)}
		if n.Kernel == KernelVM {
			st.Namespace, st.VM = "", true
		}
		c.rec.Nodes = append(c.rec.Nodes, st)
	}
	if err := wireUnderlay(ctx, spec.Name, c.rec.Nodes); err != nil {
		return err
	}
	if err := c.startForwarder(ctx, cp.Server); err != nil {
		return err
	}
	proxierKC := filepath.Join(c.paths.kubeconfigs(), "proxier.kubeconfig")
	if err := rewriteKubeconfig(cp.ProxierKubeconfig, proxierKC, forwarderURL()); err != nil {
		return err
	}
	vms, err := c.startNodes(ctx, cp, proxierKC)
	if err != nil {
		return err
	}
	if err := c.startProxiers(ctx, proxierKC, vms); err != nil {
		return err
	}
	c.rec.Created = time.Now()
	if err := writeRecord(c.paths.record(), c.rec); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return os.Remove(c.paths.creating())
}

func (c *Cluster) startControlPlane(ctx context.Context) (*controlplane.ControlPlane, error) {
	spec := c.rec.Spec
	var cp *controlplane.ControlPlane
	var err error
	// Its components carry Pdeathsig unless OutliveCaller: fork them from
	// the thread that never exits (see spawner.go). Nothing else needs
	// that thread meanwhile: the build runs on others.
	onSpawnerThread(func() {
		cp, err = controlplane.Start(ctx, controlplane.Spec{
			Name:             spec.Name,
			Dir:              c.paths.controlPlane(),
			ServiceCIDR:      ServiceCIDR,
			ClusterCIDR:      ClusterCIDR,
			AdvertiseAddress: ForwarderIP,
			ExtraSANs:        []string{ForwarderIP},
			OutliveCaller:    spec.OutliveCaller,
		})
	})
	if err != nil {
		return nil, err
	}
	// The user's copy, at the path the contract promises.
	if err := rewriteKubeconfig(cp.Kubeconfig, c.paths.kubeconfig(), cp.Server); err != nil {
		return nil, err
	}
	return cp, nil
}

// forwarderURL is the apiserver as the nodes see it.
func forwarderURL() string {
	return "https://" + net.JoinHostPort(ForwarderIP, strconv.Itoa(ForwarderPort))
}

func (c *Cluster) startForwarder(ctx context.Context, server string) error {
	u, err := url2hostport(server)
	if err != nil {
		return err
	}
	ul := underlayNS(c.rec.Spec.Name)
	listen := net.JoinHostPort(ForwarderIP, strconv.Itoa(ForwarderPort))
	// Also the apiserver's own port: the "kubernetes" Service's endpoint
	// is ForwarderIP:<apiserver port>, which in-cluster clients reach.
	_, port, _ := net.SplitHostPort(u)
	d, err := startDaemon(c.paths.pids(), "forwarder", "", filepath.Join(c.paths.logs(), "forwarder.log"),
		filepath.Join(c.paths.bin(), "localcluster"),
		[]string{"forward", "--netns", ul, "--listen", listen, "--listen", net.JoinHostPort(ForwarderIP, port), "--target", u},
		c.rec.Spec.OutliveCaller)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, addr := range []string{listen, net.JoinHostPort(ForwarderIP, port)} {
		if err := waitListening(wctx, ul, addr, d); err != nil {
			return fmt.Errorf("api forwarder: %w", err)
		}
	}
	return nil
}

// startNodes starts every node's agent (a VM node's VM, which also runs
// its proxier) and waits until all are Ready; it returns the VM daemons.
func (c *Cluster) startNodes(ctx context.Context, cp *controlplane.ControlPlane, proxierKubeconfig string) (map[string]*daemon, error) {
	spec := c.rec.Spec
	bin := c.paths.bin()
	client, err := c.Client()
	if err != nil {
		return nil, err
	}
	if err := grantNodeAgents(ctx, client); err != nil {
		return nil, err
	}
	daemons, vms := map[string]*daemon{}, map[string]*daemon{}
	for i, n := range c.rec.Nodes {
		issued, err := cp.NodeKubeconfig(n.Name)
		if err != nil {
			return nil, err
		}
		kc := filepath.Join(c.paths.kubeconfigs(), n.Name+".kubeconfig")
		if err := rewriteKubeconfig(issued, kc, forwarderURL()); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		dir := c.paths.nodeDir(n.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		args := []string{
			"--node-name", n.Name,
			"--node-ip", n.IP,
			"--kubeconfig", kc,
			"--state-dir", dir,
			"--pod-netns-prefix", podNSPrefix(spec.Name),
			"--program", "proxyproof/netserver=" + filepath.Join(bin, "netserver"),
		}
		var d *daemon
		if n.VM {
			d, err = c.startVMNode(i, args, proxierKubeconfig)
			vms[n.Name] = d
		} else {
			d, err = startDaemonWith(c.paths.pids(), "agent-"+n.Name, n.Namespace, true, filepath.Join(dir, "agent.log"),
				filepath.Join(bin, "local-node"), args, spec.OutliveCaller)
		}
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		daemons[n.Name] = d
	}
	return vms, c.waitNodesReady(ctx, client, daemons)
}

// waitNodesReady waits until every node is Ready with a podCIDR, and
// records the CIDRs.
func (c *Cluster) waitNodesReady(ctx context.Context, client kubernetes.Interface, agents map[string]*daemon) error {
	for {
		pending := map[string]string{}
		for i, n := range c.rec.Nodes {
			node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			switch {
			case err != nil:
				pending[n.Name] = err.Error()
			case node.Spec.PodCIDR == "":
				pending[n.Name] = "no podCIDR yet"
			case !nodeReady(node):
				pending[n.Name] = "not Ready"
			default:
				c.rec.Nodes[i].PodCIDR = node.Spec.PodCIDR
			}
		}
		if len(pending) == 0 {
			return nil
		}
		for name, d := range agents {
			if d.exited() {
				return fmt.Errorf("node %s: %w", name, d.failure("node agent exited"))
			}
		}
		select {
		case <-ctx.Done():
			var errs []error
			for name, why := range pending {
				errs = append(errs, fmt.Errorf("node %s: %s; agent log %s:\n%s", name, why, agents[name].log, controlplane.Tail(agents[name].log, 10)))
			}
			return fmt.Errorf("nodes not ready: %w", errors.Join(append([]error{context.Cause(ctx)}, errs...)...))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// startProxiers starts the proxier of every namespace node and waits
// until every node's proxier (VM nodes' too) answers /healthz.
func (c *Cluster) startProxiers(ctx context.Context, kc string, vms map[string]*daemon) error {
	daemons := make([]*daemon, len(c.rec.Nodes))
	for i, n := range c.rec.Nodes {
		if n.VM {
			daemons[i] = vms[n.Name]
			continue
		}
		d, err := c.startProxier(i, c.rec.Proxier, kc)
		if err != nil {
			return err
		}
		daemons[i] = d
	}
	errs := make([]error, len(daemons))
	var wg sync.WaitGroup
	for i, d := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitProxierHealthy(ctx, c.rec.Nodes[i], c.hostSide(c.rec.Nodes[i]), d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func url2hostport(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("apiserver URL %q: want https://HOST:PORT", server)
	}
	return u.Host, nil
}
