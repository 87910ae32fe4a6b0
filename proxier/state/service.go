package state

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// defaultStickySeconds is the API default for
// sessionAffinityConfig.clientIP.timeoutSeconds (3 hours).
const defaultStickySeconds = int32(v1.DefaultClientIPServiceAffinitySeconds)

// maxStickySeconds is the API's upper bound for that timeout (one day).
const maxStickySeconds = 86400

// parsedService is the endpoint-independent part of every port of one
// Service. It lives for one render: the rendered ports are the templates of
// the next one while the Service does not change.
type parsedService struct {
	ports    []*ServicePort // templates: no endpoints yet
	problems []Problem
}

// parseService renders svc for family. A Service that is not proxied at all
// (ExternalName, headless, single-stack of the other family) has no ports and
// no problem; a broken one has no ports and a Problem saying why.
func parseService(svc *v1.Service, family v1.IPFamily) *parsedService {
	ps := &parsedService{}
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	problem := func(format string, args ...any) {
		ps.problems = append(ps.problems, Problem{Kind: "Service", Object: name, Reason: fmt.Sprintf(format, args...)})
	}

	if svc.Spec.Type == v1.ServiceTypeExternalName {
		return ps
	}
	clusterIP, ok := clusterIPOf(svc, family, problem)
	if !ok {
		return ps
	}

	// Fields shared by every port: computed once, shared read-only.
	tmpl := ServicePort{
		ClusterIP:           clusterIP,
		ExternalIPs:         externalIPs(svc, family, problem),
		LoadBalancerIPs:     loadBalancerIPs(svc, family, problem),
		InternalPolicyLocal: svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal,
		// ETP only counts for Services reachable from outside, as upstream's
		// apiservice.ExternalPolicyLocal.
		ExternalPolicyLocal: externallyAccessibleType(svc) && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal,
	}
	tmpl.LoadBalancerSourceRanges = sourceRanges(svc, family, problem)
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		tmpl.SessionAffinity = true
		tmpl.StickySeconds = stickySeconds(svc, problem)
	}
	tmpl.Scheduler = scheduler(svc, problem)
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer && tmpl.ExternalPolicyLocal {
		switch p := svc.Spec.HealthCheckNodePort; {
		case p == 0:
			klog.ErrorS(nil, "Service has no healthcheck nodeport", "service", klog.KObj(svc))
		case p < 1 || p > 65535:
			problem("spec.healthCheckNodePort %d is out of range 1-65535; fix the field (no health check is served meanwhile)", p)
		default:
			tmpl.HealthCheckNodePort = p
		}
	}

	seen := make(map[ServicePortName]bool, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		where := fmt.Sprintf("spec.ports[%d] (%q)", i, p.Name)
		proto := p.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP // the API default
		}
		if !knownProtocol(proto) {
			problem("%s: protocol %q is not TCP, UDP or SCTP; the port is skipped until it is fixed", where, p.Protocol)
			continue
		}
		if p.Port < 1 || p.Port > 65535 {
			problem("%s: port %d is out of range 1-65535; the port is skipped until it is fixed", where, p.Port)
			continue
		}
		if p.NodePort < 0 || p.NodePort > 65535 {
			problem("%s: nodePort %d is out of range 1-65535; the port is skipped until it is fixed", where, p.NodePort)
			continue
		}
		spn := ServicePortName{NamespacedName: name, Port: p.Name, Protocol: proto}
		if seen[spn] {
			problem("%s: duplicate port name and protocol; only the first is used", where)
			continue
		}
		seen[spn] = true
		sp := tmpl
		sp.Name = spn
		sp.Protocol = proto
		sp.Port = p.Port
		sp.NodePort = p.NodePort
		ps.ports = append(ps.ports, &sp)
	}
	return ps
}

// clusterIPOf returns the Service's ClusterIP of family, like upstream's
// GetClusterIPByFamily. ok is false when the Service is not proxied in this
// family (headless, other family) or the IP is broken (then with a problem).
func clusterIPOf(svc *v1.Service, family v1.IPFamily, problem func(string, ...any)) (netip.Addr, bool) {
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == v1.ClusterIPNone {
		return netip.Addr{}, false
	}
	raw, field := "", ""
	if len(svc.Spec.IPFamilies) == 0 {
		// An old object without ipFamilies: the family is the IP's own.
		raw, field = svc.Spec.ClusterIP, "spec.clusterIP"
	} else {
		for i, f := range svc.Spec.IPFamilies {
			if f == family && i < len(svc.Spec.ClusterIPs) {
				raw, field = svc.Spec.ClusterIPs[i], fmt.Sprintf("spec.clusterIPs[%d]", i)
				break
			}
		}
		if raw == "" {
			return netip.Addr{}, false
		}
	}
	ip, err := netip.ParseAddr(raw)
	if err != nil || ip.Zone() != "" {
		problem("%s %q is not an IP address; the Service is skipped until it is fixed", field, raw)
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if !ofFamily(ip, family) {
		if len(svc.Spec.IPFamilies) == 0 {
			return netip.Addr{}, false // single-stack of the other family
		}
		problem("%s %q is not %s as spec.ipFamilies says; the Service is skipped until it is fixed", field, raw, family)
		return netip.Addr{}, false
	}
	return ip, true
}

// externallyAccessibleType is upstream's apiservice.ExternallyAccessible.
func externallyAccessibleType(svc *v1.Service) bool {
	return svc.Spec.Type == v1.ServiceTypeLoadBalancer ||
		svc.Spec.Type == v1.ServiceTypeNodePort ||
		(svc.Spec.Type == v1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) > 0)
}

func knownProtocol(p v1.Protocol) bool {
	return p == v1.ProtocolTCP || p == v1.ProtocolUDP || p == v1.ProtocolSCTP
}

func externalIPs(svc *v1.Service, family v1.IPFamily, problem func(string, ...any)) []netip.Addr {
	var out []netip.Addr
	for i, raw := range svc.Spec.ExternalIPs {
		ip, err := netip.ParseAddr(strings.TrimSpace(raw))
		if err != nil || ip.Zone() != "" {
			problem("spec.externalIPs[%d] %q is not an IP address; it is ignored until it is fixed", i, raw)
			continue
		}
		if ip = ip.Unmap(); ofFamily(ip, family) {
			out = append(out, ip)
		}
	}
	return out
}

// loadBalancerIPs are the VIP-mode ingress IPs of family. Ingress with
// ipMode Proxy is the load balancer's business, not ours (upstream IsVIPMode).
func loadBalancerIPs(svc *v1.Service, family v1.IPFamily, problem func(string, ...any)) []netip.Addr {
	var out []netip.Addr
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != v1.LoadBalancerIPModeVIP) {
			continue
		}
		ip, err := netip.ParseAddr(ing.IP)
		if err != nil || ip.Zone() != "" {
			problem("status.loadBalancer.ingress[%d].ip %q is not an IP address; it is ignored until it is fixed", i, ing.IP)
			continue
		}
		if ip = ip.Unmap(); ofFamily(ip, family) {
			out = append(out, ip)
		}
	}
	return out
}

// sourceRanges reads spec.loadBalancerSourceRanges, or the
// service.beta.kubernetes.io/load-balancer-source-ranges annotation when the
// field is empty. Whitespace padding is tolerated, as upstream does. A bad
// range is ignored (like upstream) but reported.
func sourceRanges(svc *v1.Service, family v1.IPFamily, problem func(string, ...any)) []netip.Prefix {
	raws, field := svc.Spec.LoadBalancerSourceRanges, "spec.loadBalancerSourceRanges"
	if len(raws) == 0 {
		ann := strings.TrimSpace(svc.Annotations[v1.AnnotationLoadBalancerSourceRangesKey])
		if ann == "" {
			return nil
		}
		raws, field = strings.Split(ann, ","), "annotation "+v1.AnnotationLoadBalancerSourceRangesKey
	}
	var out []netip.Prefix
	for i, raw := range raws {
		p, err := netip.ParsePrefix(strings.TrimSpace(raw))
		if err != nil {
			problem("%s[%d] %q is not a CIDR; it is ignored until it is fixed", field, i, raw)
			continue
		}
		if ofFamily(p.Addr(), family) {
			out = append(out, p.Masked())
		}
	}
	return out
}

// scheduler reads SchedulerAnnotation; an unknown name is a Problem and the
// configured scheduler is used meanwhile.
func scheduler(svc *v1.Service, problem func(string, ...any)) string {
	s, ok := svc.Annotations[SchedulerAnnotation]
	if !ok {
		return ""
	}
	if !slices.Contains(IPVSSchedulers, s) {
		problem("annotation %s: %q is not an IPVS scheduler (one of %v); the configured ipvs.scheduler is used until it is fixed",
			SchedulerAnnotation, s, IPVSSchedulers)
		return ""
	}
	return s
}

func stickySeconds(svc *v1.Service, problem func(string, ...any)) int32 {
	cfg := svc.Spec.SessionAffinityConfig
	if cfg == nil || cfg.ClientIP == nil || cfg.ClientIP.TimeoutSeconds == nil {
		return defaultStickySeconds
	}
	s := *cfg.ClientIP.TimeoutSeconds
	if s < 1 || s > maxStickySeconds {
		problem("spec.sessionAffinityConfig.clientIP.timeoutSeconds %d is out of range 1-%d; the default %d is used until it is fixed",
			s, maxStickySeconds, defaultStickySeconds)
		return defaultStickySeconds
	}
	return s
}
