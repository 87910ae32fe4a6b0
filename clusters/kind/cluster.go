package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/podexec"
)

// probePath is where Create puts the probe program on every node.
const probePath = "/usr/local/bin/" + clusters.Probe

// Cluster is a running kind cluster, made by Create or found by Open.
type Cluster struct {
	dir string
	rec record
	// kind node handles by name, listed once (a docker ps).
	nodesOnce sync.Once
	nodes     map[string]nodes.Node
	nodesErr  error
}

var _ clusters.Cluster = &Cluster{}

// Open finds the running cluster name that Create made (in this process
// or another).
func (p *Provider) Open(name string) (*Cluster, error) {
	r, err := readRecord(p.stateDir(name))
	if err != nil {
		return nil, err
	}
	return &Cluster{dir: p.stateDir(name), rec: r}, nil
}

var _ clusters.Attacher = (*Provider)(nil)

// Attach is Open behind the clusters seam.
func (p *Provider) Attach(name string) (clusters.Cluster, error) {
	c, err := p.Open(name)
	if err != nil {
		return nil, fmt.Errorf("kind cluster %s: %w", name, err)
	}
	return c, nil
}

// Name is the cluster's (and the kind cluster's) name.
func (c *Cluster) Name() string { return c.rec.Name }

// Provider is "kind".
func (c *Cluster) Provider() string { return ProviderName }

// Kubeconfig is the admin kubeconfig, its server the control-plane
// container's address on the cluster network.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.dir, kubeconfigFile) }

// RestConfig is the admin client configuration.
func (c *Cluster) RestConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig: %w", c.Name(), err)
	}
	return cfg, nil
}

// Nodes lists the nodes: the control plane first, then the workers in
// the order of the spec.
func (c *Cluster) Nodes() []clusters.Node { return append([]clusters.Node(nil), c.rec.Nodes...) }

// OutsideIP is the outside client's address on the cluster network.
func (c *Cluster) OutsideIP() string { return c.rec.OutsideIP }

// node is the kind handle of node name.
func (c *Cluster) node(name string) (nodes.Node, error) {
	c.nodesOnce.Do(func() {
		list, err := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(klogger{})).ListNodes(c.Name())
		if err != nil {
			c.nodesErr = fmt.Errorf("cluster %s: list nodes: %w", c.Name(), err)
			return
		}
		c.nodes = map[string]nodes.Node{}
		for _, n := range list {
			c.nodes[n.String()] = n
		}
	})
	if c.nodesErr != nil {
		return nil, c.nodesErr
	}
	n, ok := c.nodes[name]
	if !ok {
		return nil, fmt.Errorf("cluster %s: no node %q", c.Name(), name)
	}
	return n, nil
}

// ExecOnNode runs cmd in node's container (its host network namespace,
// where hostNetwork pods run) through the container runtime, and returns
// its combined output.
func (c *Cluster) ExecOnNode(ctx context.Context, node string, cmd ...string) ([]byte, error) {
	if len(cmd) == 0 {
		return nil, errors.New("exec: empty command")
	}
	n, err := c.node(node)
	if err != nil {
		return nil, err
	}
	argv := append([]string(nil), cmd...)
	if argv[0] == clusters.Probe {
		argv[0] = probePath
	}
	var out podexec.Output
	err = n.CommandContext(ctx, argv[0], argv[1:]...).SetStdout(&out).SetStderr(&out).Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("node %s: %s: %w: %s", node, strings.Join(cmd, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// ExecOutside runs cmd in the outside client, a container on the cluster
// network that is no node; its image (the netserver's) carries netprobe.
func (c *Cluster) ExecOutside(ctx context.Context, cmd ...string) ([]byte, error) {
	if len(cmd) == 0 {
		return nil, errors.New("exec: empty command")
	}
	out, err := exec.CommandContext(ctx, "docker", append([]string{"exec", c.rec.Outside}, cmd...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("outside client %s: %s: %w: %s", c.rec.Outside, strings.Join(cmd, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// RouteOutside sends the outside client's traffic for ip to node. The
// client's image has no ip(8) and no privilege, so the route is made
// from the host, in the container's network namespace.
func (c *Cluster) RouteOutside(ctx context.Context, ip, node string) error {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() {
		return fmt.Errorf("route from outside: %q is not an IPv4 address", ip)
	}
	via := ""
	for _, n := range c.rec.Nodes {
		if n.Name == node {
			via = n.IP
		}
	}
	if via == "" {
		return fmt.Errorf("route from outside to %s: cluster %s has no node %q", ip, c.Name(), node)
	}
	pid, err := docker(ctx, "inspect", "--format", "{{.State.Pid}}", c.rec.Outside)
	if err != nil {
		return fmt.Errorf("route from outside to %s: %w", ip, err)
	}
	netns := "/proc/" + strings.TrimSpace(string(pid)) + "/ns/net"
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+netns, "ip", "route", "replace", addr.String()+"/32", "via", via).CombinedOutput()
	if err != nil {
		return fmt.Errorf("route from outside to %s via node %s (%s): %w: %s", ip, node, via, err, bytes.TrimSpace(out))
	}
	return nil
}

// Destroy removes the cluster: nodes, outside client, network, the host
// rule for its bridge, state dir.
func (c *Cluster) Destroy(ctx context.Context) error {
	return down(ctx, c.Name(), c.dir)
}

var _ clusters.KernelTuner = (*Cluster)(nil)

// SetSysctl writes sysctl name in node's namespace; a global the node's
// namespace holds read-only (nf_conntrack_max) is written in the host's:
// kind nodes share its kernel.
func (c *Cluster) SetSysctl(ctx context.Context, node, name, value string) (string, error) {
	exec := func(ctx context.Context, cmd ...string) ([]byte, error) { return c.ExecOnNode(ctx, node, cmd...) }
	return clusters.SysctlByExec(ctx, exec, true, node, name, value)
}

// RunningProxier is the proxier the cluster was made with; kind's own
// kube-proxy (PROXIER=kubeadm) is upstream kube-proxy. A cluster made
// through a Terraform module reports it through the module's cluster.
func (c *Cluster) RunningProxier() string {
	if c.rec.Proxier == ProxierKubeadm {
		return clusters.ProxierKubeProxy
	}
	return c.rec.Proxier
}
