package controlplane

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Spec describes one control plane. Zero values take the defaults below.
type Spec struct {
	// Name names the cluster in kubeconfigs and logs; default "proxyproof".
	Name string
	// Dir is the state directory (certificates, kubeconfigs, etcd data,
	// logs, pid files), e.g. /run/proxyproof/<cluster>/controlplane.
	// Required; created if missing.
	Dir string
	// Version selects the binaries (default DefaultVersion); ignored when
	// Binaries is set.
	Version string
	// Binaries overrides the lookup in the cache.
	Binaries *Paths
	// ServiceCIDR is --service-cluster-ip-range; default 10.96.0.0/16.
	ServiceCIDR string
	// ClusterCIDR is the pod range nodes get their podCIDR from; default
	// 10.244.0.0/16.
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each node's podCIDR; default 24.
	NodeCIDRMaskSize int
	// AdvertiseAddress is the address the "kubernetes" Service's endpoints
	// carry: whatever forwards to the apiserver from the nodes; never
	// loopback. Empty lets kube-apiserver choose the host's default
	// interface address, where nothing listens (the apiserver binds
	// 127.0.0.1), and fails on a host with no default route.
	AdvertiseAddress string
	// ExtraSANs are more IPs or DNS names for the apiserver serving
	// certificate (a forwarder's address).
	ExtraSANs []string
	// ReadyTimeout bounds Start; default 3 minutes (2 busy cores are slow).
	ReadyTimeout time.Duration
	// Verbosity is the components' --v; default 1.
	Verbosity int
	// OutliveCaller keeps the components running when the calling process
	// dies (a kept cluster); StopDir stops them later. By default they are
	// killed with their caller, so an aborted test leaves nothing behind.
	OutliveCaller bool
}

func (s Spec) withDefaults() Spec {
	if s.Name == "" {
		s.Name = "proxyproof"
	}
	if s.Version == "" {
		s.Version = DefaultVersion
	}
	if s.ServiceCIDR == "" {
		s.ServiceCIDR = "10.96.0.0/16"
	}
	if s.ClusterCIDR == "" {
		s.ClusterCIDR = "10.244.0.0/16"
	}
	if s.NodeCIDRMaskSize == 0 {
		s.NodeCIDRMaskSize = 24
	}
	if s.ReadyTimeout == 0 {
		s.ReadyTimeout = 3 * time.Minute
	}
	if s.Verbosity == 0 {
		s.Verbosity = 1
	}
	return s
}

func (s Spec) validate() error {
	if s.Dir == "" {
		return fmt.Errorf("control plane %q: Spec.Dir is required", s.Name)
	}
	svc, err := netip.ParsePrefix(s.ServiceCIDR)
	if err != nil {
		return fmt.Errorf("control plane %q: service CIDR: %w", s.Name, err)
	}
	pods, err := netip.ParsePrefix(s.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("control plane %q: cluster CIDR: %w", s.Name, err)
	}
	if svc.Overlaps(pods) {
		return fmt.Errorf("control plane %q: service CIDR %s overlaps cluster CIDR %s", s.Name, svc, pods)
	}
	if s.NodeCIDRMaskSize < pods.Bits() || s.NodeCIDRMaskSize > pods.Addr().BitLen() {
		return fmt.Errorf("control plane %q: node CIDR mask size %d outside cluster CIDR %s", s.Name, s.NodeCIDRMaskSize, pods)
	}
	if s.AdvertiseAddress != "" {
		ip := net.ParseIP(s.AdvertiseAddress)
		if ip == nil {
			return fmt.Errorf("control plane %q: advertise address %q is not an IP", s.Name, s.AdvertiseAddress)
		}
		// The apiserver cannot write loopback endpoints for the
		// "kubernetes" Service (Endpoints validation refuses them).
		if ip.IsLoopback() || ip.IsUnspecified() {
			return fmt.Errorf("control plane %q: advertise address %s must be reachable from the nodes, not loopback or unspecified", s.Name, ip)
		}
	}
	return nil
}

// firstServiceIP is the ClusterIP of the "kubernetes" Service: the first
// address after the network address, as kube-apiserver allocates it.
func firstServiceIP(cidr string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("service CIDR %q: %w", cidr, err)
	}
	ip := p.Masked().Addr().Next()
	if !ip.IsValid() || !p.Contains(ip) {
		return netip.Addr{}, fmt.Errorf("service CIDR %q: too small for a service IP", cidr)
	}
	return ip, nil
}
