package kind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/podexec"
)

// envNetwork is how kind v0.30 is told which Docker network to use: its
// docker provider reads it with os.Getenv when it provisions nodes, and
// uses the network as it is when it exists.
const envNetwork = "KIND_EXPERIMENTAL_DOCKER_NETWORK"

// readyTimeout bounds the waits after kind create (pod network, images,
// proxier).
const readyTimeout = 5 * time.Minute

// kindCreateMu serializes kind create in this process: envNetwork is
// process-wide, and two creates must not see each other's network.
// Other processes have environments of their own.
var kindCreateMu sync.Mutex

// Create makes the cluster and returns once every node is Ready and every
// proxier pod is Ready. On failure it removes what it made, unless
// spec.Keep (then make cluster-down PROVIDER=kind removes it).
func (p *Provider) Create(ctx context.Context, spec clusters.Spec) (clusters.Cluster, error) {
	if err := p.Check(spec); err != nil {
		return nil, err
	}
	left, err := p.leftovers(ctx, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", spec.Name, err)
	}
	if running, _ := newKind().ListNodes(spec.Name); len(running) > 0 {
		return nil, fmt.Errorf("cluster %s exists (%d node containers); remove it with make cluster-down PROVIDER=kind NAME=%s, or choose another NAME", spec.Name, len(running), spec.Name)
	}
	if len(left) > 0 { // a crash's remains, no nodes: nobody uses them
		klog.InfoS("removing what a previous run left", "cluster", spec.Name, "left", left)
		if err := p.Down(ctx, spec.Name); err != nil {
			return nil, err
		}
	}
	began := time.Now()
	c, err := p.create(ctx, spec)
	if err != nil {
		if spec.Keep {
			return nil, fmt.Errorf("%w (KEEP=1: left for a look; make cluster-down PROVIDER=kind NAME=%s removes it)", err, spec.Name)
		}
		return nil, errors.Join(err, p.Down(context.WithoutCancel(ctx), spec.Name))
	}
	klog.InfoS("kind cluster ready", "cluster", spec.Name, "nodes", len(spec.Nodes), "took", time.Since(began).Round(100*time.Millisecond))
	return c, nil
}

func (p *Provider) create(ctx context.Context, spec clusters.Spec) (*Cluster, error) {
	dir := p.stateDir(spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", spec.Name, err)
	}
	net, err := createNetwork(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	if err := kindCreate(spec, p.NodeImage, net.Name, filepath.Join(dir, kubeconfigFile)); err != nil {
		return nil, err
	}
	klog.V(1).InfoS("kind cluster step done", "cluster", spec.Name, "step", "kind create", "took", time.Since(began).Round(10*time.Millisecond))
	c := &Cluster{dir: dir, rec: record{Name: spec.Name, Network: net.Name, NodeImage: p.NodeImage, Proxier: spec.Proxier, Outside: outsideName(spec.Name)}}
	if err := c.findNodes(ctx, spec); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		return nil, err
	}
	if err := c.setUp(ctx, spec); err != nil {
		return nil, err
	}
	c.rec.Created = time.Now()
	return c, writeRecord(dir, c.rec)
}

// kindCreate runs kind create with the network named by envNetwork for
// this call only.
func kindCreate(spec clusters.Spec, image, network, kubeconfig string) error {
	kindCreateMu.Lock()
	defer kindCreateMu.Unlock()
	old, had := os.LookupEnv(envNetwork)
	if err := os.Setenv(envNetwork, network); err != nil {
		return err
	}
	defer func() {
		if had {
			_ = os.Setenv(envNetwork, old)
		} else {
			_ = os.Unsetenv(envNetwork)
		}
	}()
	err := newKind().Create(spec.Name,
		kindcluster.CreateWithV1Alpha4Config(kindConfig(spec, image)),
		// kind writes its kubeconfig here, never into the user's.
		kindcluster.CreateWithKubeconfigPath(kubeconfig),
		// KEEP=1 keeps failed nodes for a look, as it keeps the rest.
		kindcluster.CreateWithRetain(spec.Keep),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	)
	if err != nil && !exportFailedOnly(err) {
		return fmt.Errorf("cluster %s: kind create (node image %s): %w%s", spec.Name, image, err, commandOutput(err))
	}
	return nil
}

// exportFailedOnly reports whether kind create failed only at its last
// step, writing a kubeconfig for the API server port published on the
// host: on an internal network Docker publishes no port, so kind cannot
// find one. Every node and kubeadm step was done by then (kind reads that
// port nowhere else); writeKubeconfig writes the kubeconfig that works.
func exportFailedOnly(err error) bool {
	return strings.Contains(err.Error(), "failed to get api server port")
}

// commandOutput is the tail of the output of the node command behind a
// kind error (kubeadm's own account of why it failed), or "".
func commandOutput(err error) string {
	run := kindexec.RunErrorForError(err)
	if run == nil || len(run.Output) == 0 {
		return ""
	}
	var lines []string
	all := strings.Split(strings.TrimSpace(string(run.Output)), "\n")
	for i, l := range all {
		// Leave out Go stack traces: a frame's function, then its file
		// on a line starting with a tab.
		if strings.HasPrefix(l, "\t") || (i+1 < len(all) && strings.HasPrefix(all[i+1], "\t")) {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "; its output ends:\n" + strings.Join(lines, "\n")
}

// findNodes records the nodes in spec order with their addresses.
func (c *Cluster) findNodes(ctx context.Context, spec clusters.Spec) error {
	for i, n := range spec.Nodes {
		name := nodeName(spec.Name, i)
		ip, err := containerIP(ctx, name, c.rec.Network)
		if err != nil {
			return fmt.Errorf("cluster %s: node %s: %w", spec.Name, name, err)
		}
		// Containers on this machine: every node shares its kernel.
		c.rec.Nodes = append(c.rec.Nodes, clusters.Node{Name: name, IP: ip, Mode: n.Mode, Kernel: clusters.KernelHost})
	}
	c.rec.APIServer = apiServerURL(c.rec.Nodes[0].IP)
	return nil
}

// writeKubeconfig replaces kind's kubeconfig (server on a published
// loopback port, which does not answer on an internal network) with one
// whose server is the control plane's address on the network.
func (c *Cluster) writeKubeconfig() error {
	internal, err := newKind().KubeConfig(c.Name(), true)
	if err != nil {
		return fmt.Errorf("cluster %s: kubeconfig: %w", c.Name(), err)
	}
	b, err := rewriteServer([]byte(internal), c.rec.APIServer)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name(), err)
	}
	if err := os.WriteFile(c.Kubeconfig(), b, 0o600); err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name(), err)
	}
	return nil
}

// setUp does what kind leaves to us: schedulable control plane, images,
// pod network, proxier, outside client; then waits for all of it.
func (c *Cluster) setUp(ctx context.Context, spec clusters.Spec) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client, err := c.client()
	if err != nil {
		return err
	}
	if err := untaintControlPlane(ctx, client, c.rec.Nodes[0].Name); err != nil {
		return err
	}
	kindNodes, names := make([]nodes.Node, len(c.rec.Nodes)), make([]string, len(c.rec.Nodes))
	for i, n := range c.rec.Nodes {
		if kindNodes[i], err = c.node(n.Name); err != nil {
			return err
		}
		names[i] = n.Name
	}
	for _, st := range []struct {
		name string
		run  func() error
	}{
		// With kubeadm's kube-proxy, ProxierImage is there as a user of
		// the kubeconfig provider pushes it: for its node helper's tools.
		{"load images", func() error {
			img := proxierImage(spec.Proxier)
			if isPath(spec.Proxier) {
				if img, err = buildPathImage(ctx, spec.Proxier); err != nil {
					return err
				}
			}
			return loadImages(ctx, kindNodes, append([]string{img, NetserverImage}, spec.Images...))
		}},
		{"install probe", func() error { return installProbe(ctx, c.Name(), NetserverImage, names) }},
		{"pod network", func() error { return c.podNetwork(ctx, client, kindNodes) }},
		{"deploy proxier", func() error { return c.deployProxier(ctx, client, spec) }},
		{"outside client", func() error { return c.startOutside(ctx) }},
		{"wait ready", func() error { return c.waitReady(ctx, client) }},
	} {
		began := time.Now()
		if err := st.run(); err != nil {
			return fmt.Errorf("cluster %s: %s: %w", c.Name(), st.name, err)
		}
		// The figures behind the README's create time (-v=1).
		klog.V(1).InfoS("kind cluster step done", "cluster", c.Name(), "step", st.name, "took", time.Since(began).Round(10*time.Millisecond))
	}
	return nil
}

// startOutside runs the outside client: the netserver image (it carries
// netprobe) on the cluster network, no node.
func (c *Cluster) startOutside(ctx context.Context) error {
	if _, err := docker(ctx, "run", "--detach", "--name", c.rec.Outside, "--hostname", "outside",
		"--network", c.rec.Network, "--label", labelCluster+"="+c.Name(), NetserverImage); err != nil {
		return fmt.Errorf("container %s: %w", c.rec.Outside, err)
	}
	ip, err := containerIP(ctx, c.rec.Outside, c.rec.Network)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.rec.Outside, err)
	}
	c.rec.OutsideIP = ip
	return nil
}

// nodeMTU is the MTU of a node's link on the cluster network.
func nodeMTU(ctx context.Context, n nodes.Node) (int, error) {
	var out podexec.Output
	if err := n.CommandContext(ctx, "cat", "/sys/class/net/eth0/mtu").SetStdout(&out).Run(); err != nil {
		return 0, fmt.Errorf("node %s: eth0 MTU: %w", n, err)
	}
	mtu, err := strconv.Atoi(strings.TrimSpace(string(out.Bytes())))
	if err != nil {
		return 0, fmt.Errorf("node %s: eth0 MTU %q: %w", n, out.Bytes(), err)
	}
	return mtu, nil
}

// client is an admin clientset.
func (c *Cluster) client() (kubernetes.Interface, error) {
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
