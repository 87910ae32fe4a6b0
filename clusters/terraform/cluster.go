package terraform

import (
	"context"
	"errors"

	"github.com/proxyproof/proxyproof/clusters"
)

// Cluster is the module's cluster as the kubeconfig provider reaches it;
// Destroy also destroys what the module made.
type Cluster struct {
	clusters.Cluster
	name  string
	run   *run
	nodes []clusters.Node
}

var _ clusters.Cluster = &Cluster{}

// Name is the run's cluster name (the module's variable name).
func (c *Cluster) Name() string { return c.name }

// Provider is "terraform".
func (c *Cluster) Provider() string { return ProviderName }

// Nodes are the kubeconfig provider's nodes with the module's modes.
func (c *Cluster) Nodes() []clusters.Node { return append([]clusters.Node(nil), c.nodes...) }

// WorkDir holds the state, the log and destroy.sh.
func (c *Cluster) WorkDir() string { return c.run.dir }

// Destroy lets the kubeconfig provider remove what it made in the
// cluster, then destroys the module's resources.
func (c *Cluster) Destroy(ctx context.Context) error {
	defer c.run.close()
	err := c.Cluster.Destroy(ctx)
	if derr := c.run.destroy(context.WithoutCancel(ctx)); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}

// Unwrap is the cluster behind (clusters.As finds its capabilities:
// access limits, proxier restarts).
func (c *Cluster) Unwrap() clusters.Cluster { return c.Cluster }
