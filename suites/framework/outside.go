package framework

import "context"

// FromOutside probes from a client outside every node: it reaches a node
// only through the node's IP, as a client on the node network would, so
// what it sees is external traffic (NodePort, externalIPs, load balancer
// IPs) with its own source address, Cluster.OutsideIP.
func (f *Framework) FromOutside() Source {
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
	return f.Cluster.RouteOutside(ctx, ip, node)
}
