package state

import (
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestNodeRendering(t *testing.T) {
	dual := newNode(thisNode, withZone("z1"), withLabel("role", "edge"),
		withAddress(v1.NodeExternalIP, "203.0.113.1"), withAddress(v1.NodeInternalIP, "192.168.0.1"),
		withAddress(v1.NodeInternalIP, "fd00::1"), withAddress(v1.NodeHostName, "node-a"),
		withAddress(v1.NodeInternalIP, "192.168.0.1"), withPodCIDRs("10.244.1.0/24", "fd00:244:1::/64"))
	tests := []struct {
		name     string
		family   v1.IPFamily
		node     *v1.Node
		gone     bool
		wantIPs  []string
		wantCIDR []string
		wantZone string
		deleting bool
	}{{
		name: "an IPv4 tracker takes the IPv4 InternalIPs first, then ExternalIPs, without duplicates",
		node: dual, wantIPs: []string{"192.168.0.1", "203.0.113.1"}, wantCIDR: []string{"10.244.1.0/24"}, wantZone: "z1",
	}, {
		name:   "an IPv6 tracker takes the IPv6 addresses and pod CIDRs",
		family: v1.IPv6Protocol,
		node:   dual, wantIPs: []string{"fd00::1"}, wantCIDR: []string{"fd00:244:1::/64"}, wantZone: "z1",
	}, {
		name:     "a node with only the legacy podCIDR field uses it",
		node:     func() *v1.Node { n := newNode(thisNode); n.Spec.PodCIDR = "10.244.2.0/24"; return n }(),
		wantCIDR: []string{"10.244.2.0/24"},
	}, {
		name: "a node with a deletionTimestamp is deleting",
		node: newNode(thisNode, withDeletionTimestamp()), deleting: true,
	}, {
		name: "a deleted node is deleting",
		node: newNode(thisNode), gone: true, deleting: true,
	}, {
		name: "a node not seen yet has only its name",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			family := tc.family
			if family == "" {
				family = v1.IPv4Protocol
			}
			n := renderNode(tc.node, thisNode, family, tc.gone)
			var ips, cidrs []string
			for _, ip := range n.IPs {
				ips = append(ips, ip.String())
			}
			for _, c := range n.PodCIDRs {
				cidrs = append(cidrs, c.String())
			}
			if n.Name != thisNode || n.Zone != tc.wantZone || n.Deleting != tc.deleting ||
				!slices.Equal(ips, tc.wantIPs) || !slices.Equal(cidrs, tc.wantCIDR) {
				t.Errorf("node = %+v; want zone %q deleting %v IPs %v podCIDRs %v", n, tc.wantZone, tc.deleting, tc.wantIPs, tc.wantCIDR)
			}
		})
	}
}

func TestNodeChangesThatNeedAFullSync(t *testing.T) {
	base := Node{Name: thisNode, Zone: "z1", Labels: map[string]string{"a": "1"},
		IPs: []netip.Addr{netip.MustParseAddr("192.168.0.1")}, PodCIDRs: prefixes("10.244.1.0/24")}
	tests := []struct {
		name   string
		change func(n *Node)
		want   bool
	}{
		{"a zone change needs a full sync", func(n *Node) { n.Zone = "z2" }, true},
		{"a new node IP needs a full sync", func(n *Node) { n.IPs = addrs("192.168.0.1", "192.168.0.2") }, true},
		{"a pod CIDR change needs a full sync", func(n *Node) { n.PodCIDRs = prefixes("10.244.9.0/24") }, true},
		{"draining needs a full sync", func(n *Node) { n.Deleting = true }, true},
		{"another label change needs no sync", func(n *Node) { n.Labels = map[string]string{"a": "2"} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed := base
			tc.change(&changed)
			if got := nodeNeedsFull(base, changed); got != tc.want {
				t.Errorf("nodeNeedsFull = %v, want %v", got, tc.want)
			}
		})
	}
}
