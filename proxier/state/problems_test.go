package state

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// A bad object (or a bad field of it) is skipped with a Problem naming it,
// while everything else is still in the view.
func TestBadObjectsProduceProblemsWhileGoodOnesStay(t *testing.T) {
	good := newService("good")
	goodSlice := newSlice("good", "good-1", withEndpoints(newEP("10.1.0.9")))
	tests := []struct {
		name        string
		objs        []any
		wantPorts   []ServicePortName // of Service "bad"
		wantKind    string
		wantObject  string
		wantProblem string // substring of the reason
		check       func(t *testing.T, v *View)
	}{{
		name:        "an unparsable cluster IP skips the whole Service",
		objs:        []any{newService("bad", withClusterIPs([]v1.IPFamily{v1.IPv4Protocol}, "10.0.0.300"))},
		wantKind:    "Service",
		wantObject:  "default/bad",
		wantProblem: `spec.clusterIPs[0] "10.0.0.300" is not an IP address`,
	}, {
		name:     "a cluster IP of the wrong family for ipFamilies skips the Service",
		objs:     []any{newService("bad", withClusterIPs([]v1.IPFamily{v1.IPv4Protocol}, "fd00::1"))},
		wantKind: "Service", wantObject: "default/bad",
		wantProblem: `is not IPv4 as spec.ipFamilies says`,
	}, {
		name:      "an unknown protocol skips that port only",
		objs:      []any{newService("bad", withPorts(svcPort("http", v1.ProtocolTCP, 80), svcPort("ping", "ICMP", 1)))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `spec.ports[1] ("ping"): protocol "ICMP" is not TCP, UDP or SCTP`,
	}, {
		name:      "an unknown IPVS scheduler annotation keeps the Service on the configured scheduler",
		objs:      []any{newService("bad", withAnnotation(SchedulerAnnotation, "fastest"))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `annotation ipvs.proxyproof.dev/scheduler: "fastest" is not an IPVS scheduler`,
		check: func(t *testing.T, v *View) {
			if s := v.Services[httpOf("bad")].Scheduler; s != "" {
				t.Errorf("Scheduler = %q, want \"\" (the configured one)", s)
			}
		},
	}, {
		name:      "a port out of range skips that port only",
		objs:      []any{newService("bad", withPorts(svcPort("http", v1.ProtocolTCP, 80), svcPort("big", v1.ProtocolTCP, 70000)))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `port 70000 is out of range 1-65535`,
	}, {
		name: "a nodePort out of range skips that port",
		objs: []any{func() *v1.Service {
			s := newService("bad", withPorts(svcPort("http", v1.ProtocolTCP, 80), svcPort("np", v1.ProtocolTCP, 81)), withType(v1.ServiceTypeNodePort))
			s.Spec.Ports[1].NodePort = 70000
			return s
		}()},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `nodePort 70000 is out of range 1-65535`,
	}, {
		name:      "a bad externalIP is ignored while the others are used",
		objs:      []any{newService("bad", withExternalIPs("192.0.2.1", "192.0.2.999"))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `spec.externalIPs[1] "192.0.2.999" is not an IP address`,
		check: func(t *testing.T, v *View) {
			if got := v.Services[httpOf("bad")].ExternalIPs; len(got) != 1 || got[0].String() != "192.0.2.1" {
				t.Errorf("ExternalIPs = %v, want [192.0.2.1]", got)
			}
		},
	}, {
		name: "a bad source range in the annotation is ignored while the others are used",
		objs: []any{newService("bad", withType(v1.ServiceTypeLoadBalancer),
			withAnnotation(v1.AnnotationLoadBalancerSourceRangesKey, "10.0.0.0/8,nonsense"))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `annotation service.beta.kubernetes.io/load-balancer-source-ranges[1] "nonsense" is not a CIDR`,
		check: func(t *testing.T, v *View) {
			if got := v.Services[httpOf("bad")].LoadBalancerSourceRanges; len(got) != 1 {
				t.Errorf("LoadBalancerSourceRanges = %v, want [10.0.0.0/8]", got)
			}
		},
	}, {
		name:      "a bad load balancer ingress IP is ignored",
		objs:      []any{newService("bad", withType(v1.ServiceTypeLoadBalancer), withIngress(ingress("lb", nil)))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `status.loadBalancer.ingress[0].ip "lb" is not an IP address`,
	}, {
		name:      "an affinity timeout out of range falls back to the default",
		objs:      []any{newService("bad", withAffinity(ptr(int32(0))))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "Service", wantObject: "default/bad",
		wantProblem: `timeoutSeconds 0 is out of range`,
		check: func(t *testing.T, v *View) {
			if got := v.Services[httpOf("bad")].StickySeconds; got != 10800 {
				t.Errorf("StickySeconds = %d, want 10800", got)
			}
		},
	}, {
		name:      "a malformed endpoint IP skips that endpoint only",
		objs:      []any{newService("bad"), newSlice("bad", "bad-1", withEndpoints(newEP("10.1.0.1"), newEP("10.1.0.x")))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "EndpointSlice", wantObject: "default/bad-1",
		wantProblem: `endpoints[1] address "10.1.0.x" is not an IP address`,
		check: func(t *testing.T, v *View) {
			if got := eps(v.Services[httpOf("bad")].ClusterEndpoints); len(got) != 1 || got[0] != "10.1.0.1:8080" {
				t.Errorf("ClusterEndpoints = %v, want [10.1.0.1:8080]", got)
			}
		},
	}, {
		name:      "an endpoint of the other family in an IPv4 slice is skipped",
		objs:      []any{newService("bad"), newSlice("bad", "bad-1", withEndpoints(newEP("fd00::5"), newEP("10.1.0.1")))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "EndpointSlice", wantObject: "default/bad-1",
		wantProblem: `is not IPv4 as the slice's addressType says`,
	}, {
		name: "a slice port with an unknown protocol is ignored",
		objs: []any{newService("bad"), newSlice("bad", "bad-1", withSlicePorts(slicePortOf("http", "ICMP", 8080)),
			withEndpoints(newEP("10.1.0.1")))},
		wantPorts: []ServicePortName{httpOf("bad")},
		wantKind:  "EndpointSlice", wantObject: "default/bad-1",
		wantProblem: `protocol "ICMP" is not TCP, UDP or SCTP`,
		check: func(t *testing.T, v *View) {
			if sp := v.Services[httpOf("bad")]; sp.HasEndpoints {
				t.Errorf("the port has endpoints %v through an ignored slice port", eps(sp.AllEndpoints))
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := append([]any{good, goodSlice}, tc.objs...)
			_, view, _ := build(t, v1.IPv4Protocol, objs...)

			if sp := mustPort(t, view, httpOf("good")); !sp.HasEndpoints {
				t.Errorf("the good Service lost its endpoints")
			}
			for n := range view.Services {
				if n.Name == "bad" && !containsName(tc.wantPorts, n) {
					t.Errorf("view has %v, which should have been skipped", n)
				}
			}
			for _, n := range tc.wantPorts {
				mustPort(t, view, n)
			}
			if len(view.Problems) != 1 {
				t.Fatalf("got %d problems, want 1: %v", len(view.Problems), view.Problems)
			}
			p := view.Problems[0]
			if p.Kind != tc.wantKind || p.Object.String() != tc.wantObject || !strings.Contains(p.Reason, tc.wantProblem) {
				t.Errorf("problem = %q (kind %s), want kind %s object %s reason containing %q", p.Error(), p.Kind, tc.wantKind, tc.wantObject, tc.wantProblem)
			}
			if tc.check != nil {
				tc.check(t, view)
			}
		})
	}
}

func containsName(list []ServicePortName, n ServicePortName) bool {
	for _, l := range list {
		if l == n {
			return true
		}
	}
	return false
}

func TestProblemsDisappearOnceTheObjectIsFixed(t *testing.T) {
	tr, view, _ := build(t, v1.IPv4Protocol, newService("web", withClusterIPs([]v1.IPFamily{v1.IPv4Protocol}, "nonsense")))
	if len(view.Problems) != 1 || len(view.Services) != 0 {
		t.Fatalf("broken Service: problems %v, services %v", view.Problems, keys(view))
	}
	tr.OnServiceUpdate(nil, newService("web"))
	view, changes := tr.Snapshot()
	if len(view.Problems) != 0 {
		t.Errorf("problems after the fix: %v", view.Problems)
	}
	if _, ok := changes.Services[httpOf("web")]; !ok {
		t.Errorf("the fixed Service is not in Changes: %v", changes.Services)
	}
	mustPort(t, view, httpOf("web"))
}

func TestASliceWithoutItsServiceIsNeitherProgrammedNorReported(t *testing.T) {
	// A slice naming a Service that does not exist is not programmed, so it
	// is not reported either.
	_, view, _ := build(t, v1.IPv4Protocol, newSlice("ghost", "ghost-1", withAddressType(discoveryv1.AddressTypeIPv4),
		withEndpoints(newEP("nonsense"))))
	if len(view.Problems) != 0 || len(view.Services) != 0 {
		t.Errorf("problems %v, services %v; want none", view.Problems, keys(view))
	}
}

// A Service is parsed again only when it changes; its problems must outlive
// renders caused by its slices alone, and a slice's problem must go with
// the slice while the Service's stays.
func TestAServiceProblemStaysWhileItsSlicesChange(t *testing.T) {
	svc := newService("web", withExternalIPs("192.0.2.999"))
	bad := newSlice("web", "web-1", withEndpoints(newEP("nonsense")), withSliceRV("1"))
	tr, view, _ := build(t, v1.IPv4Protocol, svc, bad)
	if len(view.Problems) != 2 {
		t.Fatalf("got problems %v, want the Service's and the slice's", view.Problems)
	}
	tr.OnEndpointSliceUpdate(bad, newSlice("web", "web-1", withEndpoints(newEP("10.1.0.1")), withSliceRV("2")))
	view, _ = tr.Snapshot()
	if len(view.Problems) != 1 || view.Problems[0].Kind != "Service" {
		t.Fatalf("after the slice was fixed: problems %v, want the Service's only", view.Problems)
	}
	if got := eps(mustPort(t, view, httpOf("web")).AllEndpoints); len(got) != 1 {
		t.Errorf("endpoints %q, want the fixed slice's one", got)
	}
}
