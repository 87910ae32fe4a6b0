package iptables

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// LocalMode says how traffic from pods on this node is told apart from
// off-cluster traffic (kube-proxy's detectLocalMode).
type LocalMode string

const (
	// LocalNone: no detection; only masqueradeAll marks ClusterIP traffic.
	LocalNone LocalMode = ""
	// LocalClusterCIDR: sources in the cluster's pod CIDR are local.
	LocalClusterCIDR LocalMode = "ClusterCIDR"
	// LocalNodeCIDR: sources in this node's pod CIDR (View.Node.PodCIDRs).
	LocalNodeCIDR LocalMode = "NodeCIDR"
)

// LocalDetect configures local-traffic detection.
type LocalDetect struct {
	Mode LocalMode
	// ClusterCIDRs are used with LocalClusterCIDR; the first one of the
	// proxier's family counts, like upstream's one CIDR per family.
	ClusterCIDRs []netip.Prefix
}

// Detector is upstream's LocalTrafficDetector: iptables match arguments for
// "from a local pod" (IfLocal) and "not from a local pod" (IfNotLocal); both
// empty when detection is off. The IPVS mode's iptables rules use it too.
type Detector struct {
	IfLocal, IfNotLocal []string
}

func (d Detector) implemented() bool { return len(d.IfLocal) > 0 }

// Detector resolves the detector for one sync: NodeCIDR reads the View.
func (ld LocalDetect) Detector(family v1.IPFamily, node *state.Node) Detector {
	return newDetector(ld, family, node)
}

func newDetector(ld LocalDetect, family v1.IPFamily, node *state.Node) Detector {
	var candidates []netip.Prefix
	switch ld.Mode {
	case LocalNone:
		return Detector{}
	case LocalClusterCIDR:
		candidates = ld.ClusterCIDRs
	case LocalNodeCIDR:
		candidates = node.PodCIDRs
	default:
		klog.ErrorS(nil, "Unknown local traffic detection mode; detecting nothing", "mode", ld.Mode)
		return Detector{}
	}
	for _, p := range candidates {
		if !p.IsValid() || !inFamily(p.Addr(), family) {
			continue
		}
		cidr := p.Masked().String()
		return Detector{IfLocal: []string{"-s", cidr}, IfNotLocal: []string{"!", "-s", cidr}}
	}
	klog.V(2).InfoS("No CIDR of this family for local traffic detection", "mode", ld.Mode, "family", family)
	return Detector{}
}

// inFamily reports whether a (already unmapped) address is of family.
func inFamily(a netip.Addr, family v1.IPFamily) bool {
	if family == v1.IPv6Protocol {
		return a.Is6() && !a.Is4In6()
	}
	return a.Is4()
}

func (ld LocalDetect) validate() error {
	switch ld.Mode {
	case LocalNone, LocalNodeCIDR:
		return nil
	case LocalClusterCIDR:
		if len(ld.ClusterCIDRs) == 0 {
			return fmt.Errorf("local detection ClusterCIDR needs at least one CIDR")
		}
		return nil
	}
	return fmt.Errorf("unknown local detection mode %q", ld.Mode)
}
