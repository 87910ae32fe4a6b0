package iptables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// svcInfo is one ServicePort checked and turned into the strings the rules
// need. Only values that passed validation reach it, so rendering never
// writes anything from the API but numbers, addresses and safeText names.
type svcInfo struct {
	sp        *state.ServicePort
	name      string // upstream "ns/name:port", hashed into chain names
	comment   string // name made safe for comments
	proto     string // "tcp", "udp" or "sctp"
	clusterIP string
	port      string
	nodePort  string // "" without a NodePort
	hcPort    string // "" without a health check node port

	externalIPs  []string
	lbIPs        []string
	sourceRanges []netip.Prefix

	chains serviceChains
	// cluster and local are the endpoints each policy chain uses (nil when
	// the chain is not used); reachable is their union, one SEP chain each.
	cluster, local, reachable []epInfo
}

type epInfo struct {
	ip    string // address alone, for the hairpin rule
	addr  string // "ip:port", for DNAT and comments
	chain string // KUBE-SEP-...
}

// newSvcInfo validates sp for family. A ServicePort that cannot be
// programmed safely returns an error naming it and is skipped by the
// caller; bad optional parts (one external IP, one endpoint) are dropped
// with a log line.
func newSvcInfo(sp *state.ServicePort, family v1.IPFamily) (*svcInfo, error) {
	name := sp.Name.String()
	s := &svcInfo{sp: sp, name: name, comment: safeText(name)}
	proto := sp.Protocol
	if proto == "" {
		proto = sp.Name.Protocol
	}
	switch proto {
	case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
		s.proto = strings.ToLower(string(proto))
	default:
		return nil, fmt.Errorf("service %s: unsupported protocol %q", s.comment, safeText(string(proto)))
	}
	ip, ok := familyAddr(sp.ClusterIP, family)
	if !ok {
		return nil, fmt.Errorf("service %s: cluster IP %q is not an %s address", s.comment, sp.ClusterIP, family)
	}
	s.clusterIP = ip.String()
	if sp.Port < 1 || sp.Port > 65535 {
		return nil, fmt.Errorf("service %s: port %d out of range", s.comment, sp.Port)
	}
	s.port = strconv.Itoa(int(sp.Port))
	if sp.NodePort < 0 || sp.NodePort > 65535 {
		return nil, fmt.Errorf("service %s: node port %d out of range", s.comment, sp.NodePort)
	}
	if sp.NodePort != 0 {
		s.nodePort = strconv.Itoa(int(sp.NodePort))
	}
	if sp.HealthCheckNodePort > 0 && sp.HealthCheckNodePort <= 65535 {
		s.hcPort = strconv.Itoa(int(sp.HealthCheckNodePort))
	} else if sp.HealthCheckNodePort != 0 {
		klog.InfoS("Ignoring out of range health check node port", "service", s.comment, "port", sp.HealthCheckNodePort)
	}
	s.externalIPs = familyAddrs(sp.ExternalIPs, family)
	s.lbIPs = familyAddrs(sp.LoadBalancerIPs, family)
	for _, p := range sp.LoadBalancerSourceRanges {
		if a, ok := familyAddr(p.Addr(), family); ok && p.IsValid() {
			s.sourceRanges = append(s.sourceRanges, netip.PrefixFrom(a, p.Bits()).Masked())
		}
	}
	s.chains = chainsFor(name, s.proto)
	s.endpoints(family)
	return s, nil
}

// externallyAccessible is the View's notion after filtering by family.
func (s *svcInfo) externallyAccessible() bool {
	return s.nodePort != "" || len(s.externalIPs) > 0 || len(s.lbIPs) > 0
}

// endpoints fills cluster, local and reachable like upstream's
// CategorizeEndpoints: a policy's endpoints only when that policy is used.
func (s *svcInfo) endpoints(family v1.IPFamily) {
	sp := s.sp
	if !sp.HasEndpoints {
		return
	}
	ext := s.externallyAccessible()
	// Cluster endpoints are also needed under externalTrafficPolicy Local,
	// for the short-circuit of pod and host traffic.
	usesCluster := !sp.InternalPolicyLocal || ext
	usesLocal := sp.InternalPolicyLocal || (sp.ExternalPolicyLocal && ext)
	var cluster []epInfo
	conv := func(eps []state.Endpoint) []epInfo {
		out := make([]epInfo, 0, len(eps))
		for _, e := range eps {
			a, ok := familyAddr(e.IP, family)
			if !ok || e.Port < 1 || e.Port > 65535 {
				klog.InfoS("Skipping unusable endpoint", "service", s.comment, "endpoint", safeText(e.String()))
				continue
			}
			addr := netip.AddrPortFrom(a, uint16(e.Port)).String()
			// Lists are short: linear scans beat maps here, and reusing
			// the cluster list's entry saves a hash for local endpoints.
			if findEp(out, addr) >= 0 {
				continue
			}
			if i := findEp(cluster, addr); i >= 0 {
				out = append(out, cluster[i])
				continue
			}
			out = append(out, epInfo{ip: a.String(), addr: addr, chain: endpointChain(s.name, s.proto, addr)})
		}
		return out
	}
	if usesCluster {
		s.cluster = conv(sp.ClusterEndpoints)
		cluster = s.cluster
	}
	if usesLocal {
		s.local = conv(sp.LocalEndpoints)
	}
	switch {
	case s.local == nil:
		s.reachable = s.cluster
	case s.cluster == nil:
		s.reachable = s.local
	default:
		s.reachable = append(make([]epInfo, 0, len(s.cluster)+len(s.local)), s.cluster...)
		for _, e := range s.local {
			if findEp(s.cluster, e.addr) < 0 {
				s.reachable = append(s.reachable, e)
			}
		}
	}
}

func findEp(eps []epInfo, addr string) int {
	for i := range eps {
		if eps[i].addr == addr {
			return i
		}
	}
	return -1
}

// familyAddr unmaps a and checks it is a usable address of family.
// Zoned addresses are refused: a zone is free text.
func familyAddr(a netip.Addr, family v1.IPFamily) (netip.Addr, bool) {
	if !a.IsValid() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if !inFamily(a, family) || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

func familyAddrs(in []netip.Addr, family v1.IPFamily) []string {
	var out []string
	for _, a := range in {
		if a, ok := familyAddr(a, family); ok {
			out = append(out, a.String())
		}
	}
	return out
}
