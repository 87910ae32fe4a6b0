package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/podexec"
)

// ErrNoOutside is ExecOutside's answer: a foreign cluster's network has
// no client of ours that is on the node network and no node (a
// hostNetwork pod is a node), so specs needing one are skipped.
var ErrNoOutside = fmt.Errorf("no client outside the nodes: the suite reaches a cluster it did not make only through its API server, and a hostNetwork pod would be a node, not outside")

// Cluster is a cluster the suite did not make, with the suite's own
// namespace and helper in it.
type Cluster struct {
	name   string
	acc    *access
	file   string // the kubeconfig of the chosen context alone
	client kubernetes.Interface
	ns     string
	nodes  []clusters.Node
	// helpers is each node's helper pod; noNode, when set, is why there
	// are none (ErrNoNodeAccess).
	helpers map[string]string
	noNode  error
	keep    bool
	dir     string
	// took is the take-over in place (TAKE_OVER=1), nil for none.
	took *takeOver
	// proxier is what the tested nodes run: ProxierExisting, or the
	// proxier a take-over put there.
	proxier string
}

var _ clusters.Cluster = &Cluster{}

// Name is the run's name; it names the suite's namespace.
func (c *Cluster) Name() string { return c.name }

// Provider is "kubeconfig".
func (c *Cluster) Provider() string { return ProviderName }

// RunningProxier is the cluster's own proxier, or the take-over's.
func (c *Cluster) RunningProxier() string { return c.proxier }

// Kubeconfig is a kubeconfig holding the chosen context alone, written
// beside the run's state (the user's file is never written).
func (c *Cluster) Kubeconfig() string { return c.file }

// RestConfig is the chosen context's client configuration.
func (c *Cluster) RestConfig() (*rest.Config, error) { return rest.CopyConfig(c.acc.cfg), nil }

// Nodes are the Ready, schedulable nodes: where the suite's pods land.
func (c *Cluster) Nodes() []clusters.Node { return append([]clusters.Node(nil), c.nodes...) }

// NodeAccess is nil when ExecOnNode works, else why it cannot.
func (c *Cluster) NodeAccess() error { return c.noNode }

// OutsideAccess is always ErrNoOutside.
func (c *Cluster) OutsideAccess() error { return ErrNoOutside }

// ExecOnNode runs cmd in the node's helper pod (privileged, hostNetwork):
// netprobe in the backend image's container, the rest in the tools one.
func (c *Cluster) ExecOnNode(ctx context.Context, node string, cmd ...string) ([]byte, error) {
	if c.noNode != nil {
		return nil, fmt.Errorf("node %s: %w", node, c.noNode)
	}
	pod, ok := c.helpers[node]
	if !ok {
		return nil, fmt.Errorf("cluster %s: no node %q among the tested nodes", c.name, node)
	}
	container, argv := execArgv(cmd)
	out, err := podexec.Exec(ctx, c.acc.cfg, c.ns, pod, container, argv...)
	if err != nil {
		return out, fmt.Errorf("node %s: %w", node, err)
	}
	return out, nil
}

// ExecInPod runs cmd in pod ns/name through the API (pods/exec).
func (c *Cluster) ExecInPod(ctx context.Context, ns, name string, cmd ...string) ([]byte, error) {
	return podexec.Exec(ctx, c.acc.cfg, ns, name, "", cmd...)
}

// ExecOutside cannot run: see ErrNoOutside.
func (c *Cluster) ExecOutside(context.Context, ...string) ([]byte, error) { return nil, ErrNoOutside }

// OutsideIP is empty: there is no outside client.
func (c *Cluster) OutsideIP() string { return "" }

// RouteOutside cannot run: see ErrNoOutside.
func (c *Cluster) RouteOutside(context.Context, string, string) error { return ErrNoOutside }

// namespaceGone bounds the wait for the run's namespaces to go: the
// cluster is as found only once they are gone.
const namespaceGone = 2 * time.Minute

// Destroy gives back a take-over, deletes every namespace of the run and
// waits until they are gone. The cluster itself stays: the suite did not
// make it.
func (c *Cluster) Destroy(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if c.took != nil {
		if err := c.giveBack(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteRun(ctx, c.client, c.name); err != nil {
		errs = append(errs, err)
	} else if err := waitRunGone(ctx, c.client, c.name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		_ = os.RemoveAll(c.dir)
		return nil
	}
	return fmt.Errorf("cluster %s: %v (make cluster-down PROVIDER=kubeconfig KUBECONFIG=%s removes what is left)", c.name, errs, c.acc.path)
}

func waitRunGone(ctx context.Context, client kubernetes.Interface, run string) error {
	var left int
	err := wait.PollUntilContextTimeout(ctx, time.Second, namespaceGone, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: clusters.LabelRun + "=" + run})
		if err != nil {
			return false, nil
		}
		left = len(list.Items)
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("run %s: %d namespace(s) still terminating after %s: %w", run, left, namespaceGone, err)
	}
	return nil
}

// writeKubeconfig writes the chosen context alone, with its credentials
// inlined, for the run's tools and for KEEP=1 users.
func (c *Cluster) writeKubeconfig() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	c.file = filepath.Join(c.dir, "kubeconfig")
	return writeContext(c.acc, c.file)
}

// giveBack undoes the take-over (takeover.go), cleaning each taken node
// with our proxier's --cleanup from the helper's tools container first
// (kube-proxy's own start-up clean-up leaves IPVS state when it comes
// back in iptables mode), then checks that each node runs the mode it ran
// before.
func (c *Cluster) giveBack(ctx context.Context) error {
	clean := func(ctx context.Context, node string) error {
		out, err := c.ExecOnNode(ctx, node, ourBinary, "--cleanup")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	_, err := giveBack(ctx, c.client, c.name, clean)
	if err != nil {
		return fmt.Errorf("TAKE_OVER=1: giving kube-proxy back: %w", err)
	}
	var errs []error
	for n, was := range c.took.rec.Modes {
		if err := c.waitMode(ctx, n, was); err != nil {
			errs = append(errs, fmt.Errorf("TAKE_OVER=1: kube-proxy back, but %w", err))
		}
	}
	c.took = nil
	return errors.Join(errs...)
}
