package state

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
)

// The endpoint-independent fields of one Service's ServicePorts.
func TestServiceRendering(t *testing.T) {
	base := func(name ServicePortName, ip string, port int32) ServicePort {
		return ServicePort{Name: name, Protocol: name.Protocol, ClusterIP: netip.MustParseAddr(ip), Port: port}
	}
	vip := v1.LoadBalancerIPModeVIP
	proxy := v1.LoadBalancerIPModeProxy
	tests := []struct {
		name   string
		family v1.IPFamily
		svc    *v1.Service
		want   []ServicePort // nil: the Service is absent from the view
	}{{
		name: "a ClusterIP Service has one ServicePort per port",
		svc: newService("web", withPorts(svcPort("http", v1.ProtocolTCP, 80), svcPort("dns", v1.ProtocolUDP, 53),
			svcPort("dns", v1.ProtocolTCP, 53))),
		want: []ServicePort{
			base(httpOf("web"), "10.0.0.1", 80),
			base(spName("web", "dns", v1.ProtocolUDP), "10.0.0.1", 53),
			base(spName("web", "dns", v1.ProtocolTCP), "10.0.0.1", 53),
		},
	}, {
		name: "an unnamed port without protocol gets the empty name and TCP",
		svc:  newService("web", withPorts(v1.ServicePort{Port: 80})),
		want: []ServicePort{base(spName("web", "", v1.ProtocolTCP), "10.0.0.1", 80)},
	}, {
		name: "a headless Service is not in the view",
		svc:  newService("web", withClusterIPs([]v1.IPFamily{v1.IPv4Protocol}, v1.ClusterIPNone)),
	}, {
		name: "an ExternalName Service is not in the view",
		svc:  newService("web", withType(v1.ServiceTypeExternalName), withClusterIPs(nil)),
	}, {
		name:   "a dual-stack Service contributes its IPv6 cluster IP to an IPv6 tracker",
		family: v1.IPv6Protocol,
		svc:    newService("web", withClusterIPs([]v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}, "10.0.0.1", "fd00::1")),
		want:   []ServicePort{base(httpOf("web"), "fd00::1", 80)},
	}, {
		name: "a dual-stack Service contributes its IPv4 cluster IP to an IPv4 tracker",
		svc:  newService("web", withClusterIPs([]v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}, "fd00::1", "10.0.0.1")),
		want: []ServicePort{base(httpOf("web"), "10.0.0.1", 80)},
	}, {
		name: "a single-stack IPv6 Service is skipped by an IPv4 tracker",
		svc:  newService("web", withClusterIPs([]v1.IPFamily{v1.IPv6Protocol}, "fd00::1")),
	}, {
		name: "a Service without ipFamilies takes its family from the cluster IP",
		svc:  newService("web", withClusterIPs(nil, "10.0.0.9")),
		want: []ServicePort{base(httpOf("web"), "10.0.0.9", 80)},
	}, {
		name:   "a Service without ipFamilies of the other family is skipped",
		family: v1.IPv6Protocol,
		svc:    newService("web", withClusterIPs(nil, "10.0.0.9")),
	}, {
		name: "externalIPs of the other family are dropped",
		svc:  newService("web", withExternalIPs("192.0.2.1", "2001:db8::1", "192.0.2.2")),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.ExternalIPs = addrs("192.0.2.1", "192.0.2.2")
			return sp
		}()},
	}, {
		name: "LoadBalancer ingress IPs in VIP mode are used and Proxy mode ones are skipped",
		svc: newService("web", withType(v1.ServiceTypeLoadBalancer), withNodePort(30080),
			withIngress(ingress("198.51.100.1", nil), ingress("198.51.100.2", &vip), ingress("198.51.100.3", &proxy),
				ingress("2001:db8::5", nil), v1.LoadBalancerIngress{Hostname: "lb.example"})),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.NodePort = 30080
			sp.LoadBalancerIPs = addrs("198.51.100.1", "198.51.100.2")
			return sp
		}()},
	}, {
		name: "source ranges come from the spec, trimmed, masked and of our family",
		svc:  newService("web", withType(v1.ServiceTypeLoadBalancer), withSourceRanges(" 203.0.113.7/24 ", "2001:db8::/32", "10.0.0.0/8")),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.LoadBalancerSourceRanges = prefixes("203.0.113.0/24", "10.0.0.0/8")
			return sp
		}()},
	}, {
		name: "source ranges fall back to the annotation when the spec has none",
		svc: newService("web", withType(v1.ServiceTypeLoadBalancer),
			withAnnotation(v1.AnnotationLoadBalancerSourceRangesKey, " 203.0.113.0/24, 198.51.100.0/25 ")),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.LoadBalancerSourceRanges = prefixes("203.0.113.0/24", "198.51.100.0/25")
			return sp
		}()},
	}, {
		name: "the spec's source ranges win over the annotation",
		svc: newService("web", withType(v1.ServiceTypeLoadBalancer), withSourceRanges("10.1.0.0/16"),
			withAnnotation(v1.AnnotationLoadBalancerSourceRangesKey, "203.0.113.0/24")),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.LoadBalancerSourceRanges = prefixes("10.1.0.0/16")
			return sp
		}()},
	}, {
		name: "ClientIP affinity without a config uses the 10800 second default",
		svc:  newService("web", withAffinity(nil)),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.SessionAffinity, sp.StickySeconds = true, 10800
			return sp
		}()},
	}, {
		name: "ClientIP affinity uses the configured timeout",
		svc:  newService("web", withAffinity(ptr(int32(60)))),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.SessionAffinity, sp.StickySeconds = true, 60
			return sp
		}()},
	}, {
		name: "externalTrafficPolicy Local counts for a NodePort Service",
		svc:  newService("web", withNodePort(30080), withETPLocal()),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.NodePort, sp.ExternalPolicyLocal = 30080, true
			return sp
		}()},
	}, {
		name: "externalTrafficPolicy Local is ignored for a ClusterIP Service without externalIPs",
		svc:  newService("web", withETPLocal()),
		want: []ServicePort{base(httpOf("web"), "10.0.0.1", 80)},
	}, {
		name: "a LoadBalancer Service with externalTrafficPolicy Local has its health check node port",
		svc:  newService("web", withType(v1.ServiceTypeLoadBalancer), withNodePort(30080), withETPLocal(), withHealthCheckNodePort(32000)),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.NodePort, sp.ExternalPolicyLocal, sp.HealthCheckNodePort = 30080, true, 32000
			return sp
		}()},
	}, {
		name: "a LoadBalancer Service with externalTrafficPolicy Cluster has no health check node port",
		svc:  newService("web", withType(v1.ServiceTypeLoadBalancer), withNodePort(30080), withHealthCheckNodePort(32000)),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.NodePort = 30080
			return sp
		}()},
	}, {
		name: "internalTrafficPolicy Local is recorded",
		svc:  newService("web", withITPLocal()),
		want: []ServicePort{func() ServicePort {
			sp := base(httpOf("web"), "10.0.0.1", 80)
			sp.InternalPolicyLocal = true
			return sp
		}()},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			family := tc.family
			if family == "" {
				family = v1.IPv4Protocol
			}
			_, view, _ := build(t, family, tc.svc)
			var got []ServicePort
			for _, sp := range view.Services {
				got = append(got, *sp)
			}
			sortBy := cmpopts.SortSlices(func(a, b ServicePort) bool {
				return a.Name.String()+string(a.Protocol) < b.Name.String()+string(b.Protocol)
			})
			if d := cmp.Diff(tc.want, got, cmpNetip, sortBy, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("ServicePorts (-want +got):\n%s", d)
			}
			if len(view.Problems) > 0 {
				t.Errorf("unexpected problems: %v", view.Problems)
			}
		})
	}
}

func TestTheIPVSSchedulerAnnotationReachesEveryPortOfTheService(t *testing.T) {
	_, v, _ := build(t, v1.IPv4Protocol, newService("web", withAnnotation(SchedulerAnnotation, "sh")))
	sp := v.Services[httpOf("web")]
	if sp == nil || sp.Scheduler != "sh" {
		t.Fatalf("ServicePort = %+v, want Scheduler sh", sp)
	}
	_, v, _ = build(t, v1.IPv4Protocol, newService("plain"))
	if s := v.Services[httpOf("plain")].Scheduler; s != "" {
		t.Fatalf("without the annotation Scheduler = %q, want empty", s)
	}
}
