package local

import (
	"context"
	"fmt"

	"github.com/proxyproof/proxyproof/clusters"
)

var _ clusters.KernelTuner = seamCluster{}

// SetSysctl writes sysctl name as node's network namespace sees it: in a
// VM node's own kernel, or in a namespace node's namespace (a global the
// namespace holds read-only, nf_conntrack_max, in the host's own).
func (c *Cluster) SetSysctl(ctx context.Context, node, name, value string) (string, error) {
	n, ok := c.node(node)
	if !ok {
		return "", fmt.Errorf("cluster %s: no node %q", c.Name(), node)
	}
	exec := func(ctx context.Context, cmd ...string) ([]byte, error) { return c.ExecOnNode(ctx, node, cmd...) }
	return clusters.SysctlByExec(ctx, exec, !n.VM, node, name, value)
}
