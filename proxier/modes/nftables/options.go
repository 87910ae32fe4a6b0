package nftables

import (
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// Local traffic detection modes, as kube-proxy's --detect-local-mode.
const (
	DetectLocalNone        = ""
	DetectLocalClusterCIDR = "ClusterCIDR"
	DetectLocalNodeCIDR    = "NodeCIDR"
)

// LocalDetect says how to tell pod traffic from other traffic.
type LocalDetect struct {
	// Mode is one of the DetectLocal* constants.
	Mode string
	// ClusterCIDRs are the pod CIDRs of the cluster (Mode ClusterCIDR).
	// NodeCIDR mode takes the node's pod CIDRs from the View instead.
	ClusterCIDRs []netip.Prefix
}

// Options configure the nftables mode.
type Options struct {
	// NetNS is the network namespace to program ("" = the current one).
	NetNS string
	// MasqueradeAll masquerades all traffic to ClusterIPs.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit used to flag packets for SNAT (0-31,
	// kube-proxy's default is 14).
	MasqueradeBit int
	LocalDetect   LocalDetect
	// NodePortAddresses limits NodePorts to local addresses inside these
	// prefixes; empty means every local address ("fib daddr type local").
	NodePortAddresses []netip.Prefix

	// NFT is the kernel seam: nil opens the real nft in NetNS. Tests pass a
	// knftables.Fake (one per IP family, table "kube-proxy").
	NFT knftables.Interface
	// LocalAddrs lists the node's local addresses, for NodePortAddresses.
	// nil reads the interfaces of NetNS.
	LocalAddrs func() ([]netip.Addr, error)
}

func (o *Options) validate() error {
	if o.MasqueradeBit < 0 || o.MasqueradeBit > 31 {
		return fmt.Errorf("nftables: masqueradeBit %d out of range 0-31", o.MasqueradeBit)
	}
	switch o.LocalDetect.Mode {
	case DetectLocalNone, DetectLocalNodeCIDR:
	case DetectLocalClusterCIDR:
		if len(o.LocalDetect.ClusterCIDRs) == 0 {
			return fmt.Errorf("nftables: detect-local mode ClusterCIDR needs at least one cluster CIDR")
		}
	default:
		return fmt.Errorf("nftables: unknown detect-local mode %q", o.LocalDetect.Mode)
	}
	return nil
}

func (o *Options) masqueradeMark() string {
	return fmt.Sprintf("%#08x", uint32(1)<<uint(o.MasqueradeBit))
}
