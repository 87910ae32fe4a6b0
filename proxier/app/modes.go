package app

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/modes/ipvs"
	"github.com/proxyproof/proxyproof/proxier/modes/nftables"
)

// errModeUnavailable marks a mode this build or this kernel cannot run.
var errModeUnavailable = errors.New("mode unavailable")

// newMode builds mode name from cfg. preflight=false is for --cleanup, which
// must work even where the mode could not run. keep lists iptables chains,
// by table, the mode's Cleanup must leave to another mode (migration).
func newMode(ctx context.Context, cfg *config.Config, name string, preflight bool, keep map[string][]string) (modes.Mode, error) {
	local, err := localMode(cfg)
	if err != nil {
		return nil, err
	}
	switch name {
	case config.ModeIPTables:
		bit := int32(cfg.MasqueradeBit)
		return iptables.New(ctx, iptables.Options{
			NetNS:              cfg.NetNS,
			Family:             v1.IPv4Protocol,
			MasqueradeAll:      cfg.MasqueradeAll,
			MasqueradeBit:      &bit,
			LocalDetect:        iptables.LocalDetect{Mode: iptables.LocalMode(local), ClusterCIDRs: cfg.ClusterCIDRs},
			NodePortAddresses:  cfg.NodePortAddresses,
			LocalhostNodePorts: cfg.LocalhostNodePorts,
			KeepChains:         keep,
		})
	case config.ModeNFTables:
		m, err := nftables.New(nftables.Options{
			NetNS:             cfg.NetNS,
			MasqueradeAll:     cfg.MasqueradeAll,
			MasqueradeBit:     cfg.MasqueradeBit,
			LocalDetect:       nftables.LocalDetect{Mode: local, ClusterCIDRs: cfg.ClusterCIDRs},
			NodePortAddresses: cfg.NodePortAddresses,
		})
		if err != nil {
			return nil, err
		}
		if preflight {
			if err := m.Preflight(ctx); err != nil {
				return nil, err
			}
		}
		return m, nil
	case config.ModeIPVS:
		return newIPVS(ctx, cfg, local, preflight, keep)
	}
	return nil, fmt.Errorf("proxy mode %q is unknown; use iptables, nftables or ipvs", name)
}

// newIPVS builds the ipvs mode. A kernel without ip_vs stops the proxier
// with the module to load; for --cleanup (preflight=false) it makes the
// mode unavailable instead, as there is nothing of it to clean.
func newIPVS(ctx context.Context, cfg *config.Config, local string, preflight bool, keep map[string][]string) (modes.Mode, error) {
	bit := int32(cfg.MasqueradeBit)
	m, err := ipvs.New(ctx, ipvs.Options{
		NetNS:             cfg.NetNS,
		Family:            v1.IPv4Protocol,
		Scheduler:         cfg.IPVS.Scheduler,
		StrictARP:         cfg.IPVS.StrictARP,
		TCPTimeout:        cfg.IPVS.TCPTimeout,
		TCPFinTimeout:     cfg.IPVS.TCPFinTimeout,
		UDPTimeout:        cfg.IPVS.UDPTimeout,
		ExcludeCIDRs:      cfg.IPVS.ExcludeCIDRs,
		MasqueradeAll:     cfg.MasqueradeAll,
		MasqueradeBit:     &bit,
		LocalDetect:       iptables.LocalDetect{Mode: iptables.LocalMode(local), ClusterCIDRs: cfg.ClusterCIDRs},
		NodePortAddresses: cfg.NodePortAddresses,
		NoPreflight:       !preflight,
		KeepChains:        keep,
	})
	if err != nil {
		if !preflight && ipvs.IsKernelError(err) {
			return nil, fmt.Errorf("proxy mode %q: %w: %w", config.ModeIPVS, errModeUnavailable, err)
		}
		return nil, err
	}
	return m, nil
}

// localMode maps detectLocalMode; modes support ClusterCIDR and NodeCIDR.
// ClusterCIDR without a clusterCIDR detects nothing, as upstream. The
// interface-based modes are refused rather than silently ignored.
func localMode(cfg *config.Config) (string, error) {
	switch cfg.DetectLocalMode {
	case config.LocalModeClusterCIDR:
		if len(cfg.ClusterCIDRs) == 0 {
			return "", nil
		}
		return config.LocalModeClusterCIDR, nil
	case config.LocalModeNodeCIDR:
		return config.LocalModeNodeCIDR, nil
	}
	return "", fmt.Errorf("detectLocalMode %q is not supported by this proxier; use ClusterCIDR (with clusterCIDR) or NodeCIDR", cfg.DetectLocalMode)
}
