package local

import (
	"context"
	"fmt"
	"net/netip"
)

// OutsideIP is the address a client outside every node speaks from: the
// underlay bridge's own address (the forwarder's), in the underlay
// namespace, which is no node and runs no proxier.
const OutsideIP = ForwarderIP

// ExecOutside runs a command in the cluster's underlay namespace, a client
// outside every node (source OutsideIP on the node subnet), and returns
// its combined output: what reaches a node through its IP from there is
// what a client on the node's network would see.
func (c *Cluster) ExecOutside(ctx context.Context, cmd ...string) ([]byte, error) {
	return execIn(ctx, underlayNS(c.Name()), cmd)
}

// RouteOutside sends the outside client's traffic for ip (an external IP
// or a load balancer's ingress IP) to node, as a router in front of the
// nodes would. It replaces any earlier route for ip. The route stays in
// the underlay namespace, which has no way out of the cluster.
func (c *Cluster) RouteOutside(ctx context.Context, ip, node string) error {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return fmt.Errorf("cluster %s: route outside to %q: want an IPv4 address", c.Name(), ip)
	}
	for _, n := range c.rec.Nodes {
		if n.Name == node {
			if err := ipn(ctx, underlayNS(c.Name()), "route", "replace", a.String()+"/32", "via", n.IP, "dev", "br0"); err != nil {
				return fmt.Errorf("cluster %s: route %s via node %s: %w", c.Name(), ip, node, err)
			}
			return nil
		}
	}
	return fmt.Errorf("cluster %s: route outside to %s: no node %q", c.Name(), ip, node)
}
