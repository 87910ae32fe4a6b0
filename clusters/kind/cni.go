package kind

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// cniConfPath is where containerd in a kind node looks for the pod
// network's configuration (the directory kindnet writes to).
const cniConfPath = "/etc/cni/net.d/10-proxyproof.conflist"

// cniConflist is a node's pod network: kindnet's own shape without
// kindnet (which would need an image): Debian's ptp plugin gives each pod
// a veth and a /32 route on the node, host-local hands out addresses from
// the node's podCIDR, and portmap serves hostPorts. No masquerade: pods
// reach each other with their own addresses (veths as wide as the node's
// link, mtu) through the routes Create
// adds between nodes, as Services' backends must see them.
func cniConflist(podCIDR string, mtu int) ([]byte, error) {
	prefix, err := netip.ParsePrefix(podCIDR)
	if err != nil || !prefix.Addr().Is4() || prefix.Masked() != prefix {
		return nil, fmt.Errorf("podCIDR %q: want an IPv4 network address with its prefix length (10.244.1.0/24): %v", podCIDR, err)
	}
	if mtu < 576 {
		return nil, fmt.Errorf("MTU %d: want the node's eth0 MTU, at least 576", mtu)
	}
	type m = map[string]any
	conf := m{
		"cniVersion": "0.4.0",
		"name":       "proxyproof",
		"plugins": []m{
			{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    mtu,
				"ipam": m{
					"type":    "host-local",
					"dataDir": "/run/cni-ipam-state",
					"routes":  []m{{"dst": "0.0.0.0/0"}},
					"ranges":  [][]m{{{"subnet": prefix.String()}}},
				},
			},
			{"type": "portmap", "capabilities": m{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// podRoute is the route one node adds to reach another node's pods.
type podRoute struct {
	PodCIDR string
	Via     string
}

// podRoutes are the routes node i needs: every other node's podCIDR
// through that node's address on the cluster network.
func podRoutes(i int, podCIDRs, nodeIPs []string) []podRoute {
	var routes []podRoute
	for j := range podCIDRs {
		if j != i {
			routes = append(routes, podRoute{PodCIDR: podCIDRs[j], Via: nodeIPs[j]})
		}
	}
	return routes
}
