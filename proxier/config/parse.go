package config

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/kube-proxy/config/v1alpha1"
)

// parse turns a validated, platform-defaulted object into a Config. It
// still returns errors rather than trusting Validate, so a gap between the
// two can never start a half-configured daemon.
func parse(obj *v1alpha1.KubeProxyConfiguration) (*Config, error) {
	sync, minSync := modePeriods(obj)
	bit, _ := masqueradeBit(obj)
	c := &Config{
		Mode:                string(obj.Mode),
		HostnameOverride:    obj.HostnameOverride,
		BindAddressHardFail: obj.BindAddressHardFail,
		EnableProfiling:     obj.EnableProfiling,
		SyncPeriod:          sync.Duration,
		MinSyncPeriod:       minSync.Duration,
		ConfigSyncPeriod:    obj.ConfigSyncPeriod.Duration,
		MasqueradeAll:       masqueradeAll(obj),
		MasqueradeBit:       int(bit),
		LocalhostNodePorts:  deref(obj.IPTables.LocalhostNodePorts),
		DetectLocalMode:     string(obj.DetectLocalMode),
		DetectLocal: DetectLocal{
			BridgeInterface:     obj.DetectLocal.BridgeInterface,
			InterfaceNamePrefix: obj.DetectLocal.InterfaceNamePrefix,
		},
		OOMScoreAdj: int(deref(obj.OOMScoreAdj)),
		Conntrack: Conntrack{
			MaxPerCore:            int(deref(obj.Conntrack.MaxPerCore)),
			Min:                   int(deref(obj.Conntrack.Min)),
			TCPEstablishedTimeout: durationOf(obj.Conntrack.TCPEstablishedTimeout),
			TCPCloseWaitTimeout:   durationOf(obj.Conntrack.TCPCloseWaitTimeout),
			TCPBeLiberal:          obj.Conntrack.TCPBeLiberal,
			UDPTimeout:            obj.Conntrack.UDPTimeout.Duration,
			UDPStreamTimeout:      obj.Conntrack.UDPStreamTimeout.Duration,
		},
		IPVS: IPVS{
			Scheduler:     obj.IPVS.Scheduler,
			StrictARP:     obj.IPVS.StrictARP,
			TCPTimeout:    obj.IPVS.TCPTimeout.Duration,
			TCPFinTimeout: obj.IPVS.TCPFinTimeout.Duration,
			UDPTimeout:    obj.IPVS.UDPTimeout.Duration,
		},
		ClientConnection: ClientConnection{
			Kubeconfig:         obj.ClientConnection.Kubeconfig,
			QPS:                obj.ClientConnection.QPS,
			Burst:              int(obj.ClientConnection.Burst),
			ContentType:        obj.ClientConnection.ContentType,
			AcceptContentTypes: obj.ClientConnection.AcceptContentTypes,
		},
		Raw: obj,
	}
	if c.IPVS.Scheduler == "" {
		c.IPVS.Scheduler = defaultScheduler
	}
	var err error
	if c.ClusterCIDRs, err = parseClusterCIDRs(obj.ClusterCIDR); err != nil {
		return nil, fmt.Errorf("clusterCIDR: %w", err)
	}
	if c.BindAddress, err = netip.ParseAddr(obj.BindAddress); err != nil {
		return nil, fmt.Errorf("bindAddress: %w", err)
	}
	if obj.HealthzBindAddress != "" {
		if c.HealthzBindAddress, err = parseHostPort(obj.HealthzBindAddress); err != nil {
			return nil, fmt.Errorf("healthzBindAddress %q: %w", obj.HealthzBindAddress, err)
		}
	}
	if obj.MetricsBindAddress != "" {
		if c.MetricsBindAddress, err = parseHostPort(obj.MetricsBindAddress); err != nil {
			return nil, fmt.Errorf("metricsBindAddress %q: %w", obj.MetricsBindAddress, err)
		}
	}
	if len(obj.NodePortAddresses) == 1 && obj.NodePortAddresses[0] == NodePortAddressesPrimary {
		c.NodePortPrimary = true
	} else if c.NodePortAddresses, err = parsePrefixes("nodePortAddresses", obj.NodePortAddresses); err != nil {
		return nil, err
	}
	if c.Mode == ModeIPVS { // like upstream, other modes never look at them
		if c.IPVS.ExcludeCIDRs, err = parsePrefixes("ipvs.excludeCIDRs", obj.IPVS.ExcludeCIDRs); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func parsePrefixes(field string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range in {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
