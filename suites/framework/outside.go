package framework

import (
	"context"

	"github.com/onsi/ginkgo/v2"

	"github.com/proxyproof/proxyproof/clusters"
)

// SkipWithoutOutside skips the running spec, with the cluster's reason,
// where the cluster has no client outside its nodes.
func (f *Framework) SkipWithoutOutside() {
	if l, ok := clusters.As[clusters.Limited](f.Cluster); ok && l.OutsideAccess() != nil {
		ginkgo.Skip("needs a client outside the nodes: " + l.OutsideAccess().Error())
	}
}

// SkipWithoutNodeAccess skips the running spec, with the cluster's
// reason, where the suite cannot run commands on the nodes.
func (f *Framework) SkipWithoutNodeAccess() {
	if l, ok := clusters.As[clusters.Limited](f.Cluster); ok && l.NodeAccess() != nil {
		ginkgo.Skip("needs node access: " + l.NodeAccess().Error())
	}
}

// FromOutside probes from a client outside every node: it reaches a node
// only through the node's IP, as a client on the node network would, so
// what it sees is external traffic (NodePort, externalIPs, load balancer
// IPs) with its own source address, Cluster.OutsideIP.
func (f *Framework) FromOutside() Source {
	f.SkipWithoutOutside()
	return Source{
		Description: "outside client " + f.Cluster.OutsideIP(),
		exec: func(ctx context.Context, cmd ...string) ([]byte, error) {
			return f.Cluster.ExecOutside(ctx, cmd...)
		},
	}
}

// RouteFromOutside sends the outside client's traffic for ip (an external
// or load balancer IP) to node, as the network in front of a cluster does.
func (f *Framework) RouteFromOutside(ctx context.Context, ip, node string) error {
	f.SkipWithoutOutside()
	return f.Cluster.RouteOutside(ctx, ip, node)
}
