package state

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// How a Service port's endpoints are gathered from its EndpointSlices.
func TestEndpointSlicesMerge(t *testing.T) {
	tests := []struct {
		name   string
		family v1.IPFamily
		svc    *v1.Service
		slices []*discoveryv1.EndpointSlice
		port   ServicePortName
		want   []string // AllEndpoints
		check  func(t *testing.T, sp *ServicePort)
	}{{
		name: "several slices of one Service are merged and sorted like upstream",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-b", withEndpoints(newEP("10.1.0.2"), newEP("10.1.0.10"))),
			newSlice("web", "web-a", withEndpoints(newEP("10.1.0.3"))),
		},
		port: httpOf("web"),
		// "ip:port" string order, as upstream's byEndpoint.
		want: []string{"10.1.0.10:8080", "10.1.0.2:8080", "10.1.0.3:8080"},
	}, {
		name: "an endpoint in two slices appears once and the non-terminating copy wins",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-a", withEndpoints(newEP("10.1.0.1"))),
			newSlice("web", "web-b", withEndpoints(newEP("10.1.0.1", terminating(true)), newEP("10.1.0.2"))),
			newSlice("web", "web-c", withEndpoints(newEP("10.1.0.2", terminating(true)))),
		},
		port: httpOf("web"),
		want: []string{"10.1.0.1:8080", "10.1.0.2:8080"},
	}, {
		name: "a named targetPort with different numbers per slice keeps each slice's number",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-a", withSlicePorts(slicePortOf("http", v1.ProtocolTCP, 8080)), withEndpoints(newEP("10.1.0.1"))),
			newSlice("web", "web-b", withSlicePorts(slicePortOf("http", v1.ProtocolTCP, 9090)), withEndpoints(newEP("10.1.0.2"))),
		},
		port: httpOf("web"),
		want: []string{"10.1.0.1:8080", "10.1.0.2:9090"},
	}, {
		name: "the same IP on two target ports of one port name is two endpoints",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-a", withSlicePorts(slicePortOf("http", v1.ProtocolTCP, 8080)), withEndpoints(newEP("10.1.0.1"))),
			newSlice("web", "web-b", withSlicePorts(slicePortOf("http", v1.ProtocolTCP, 9090)), withEndpoints(newEP("10.1.0.1"))),
		},
		port: httpOf("web"),
		want: []string{"10.1.0.1:8080", "10.1.0.1:9090"},
	}, {
		name: "slice ports are matched by name and protocol",
		svc:  newService("dns", withPorts(svcPort("dns", v1.ProtocolUDP, 53), svcPort("dns", v1.ProtocolTCP, 53))),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("dns", "dns-a", withSlicePorts(slicePortOf("dns", v1.ProtocolUDP, 5353), slicePortOf("dns", v1.ProtocolTCP, 5354)),
				withEndpoints(newEP("10.1.0.1"))),
		},
		port: spName("dns", "dns", v1.ProtocolUDP),
		want: []string{"10.1.0.1:5353"},
	}, {
		name: "slices of the other address family are ignored",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-a", withEndpoints(newEP("10.1.0.1"))),
			newSlice("web", "web-v6", withAddressType(discoveryv1.AddressTypeIPv6), withEndpoints(newEP("fd00::1"))),
			newSlice("web", "web-fqdn", withAddressType(discoveryv1.AddressTypeFQDN), withEndpoints(newEP("example.com"))),
		},
		port: httpOf("web"),
		want: []string{"10.1.0.1:8080"},
	}, {
		name:   "an IPv6 tracker takes only the IPv6 slices of a dual-stack Service",
		family: v1.IPv6Protocol,
		svc:    newService("web", withClusterIPs([]v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}, "10.0.0.1", "fd00::a")),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-a", withEndpoints(newEP("10.1.0.1"))),
			newSlice("web", "web-v6", withAddressType(discoveryv1.AddressTypeIPv6), withEndpoints(newEP("fd00::1"))),
		},
		port: httpOf("web"),
		want: []string{"[fd00::1]:8080"},
	}, {
		name: "a slice without the service-name label belongs to no Service",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
			es := newSlice("web", "web-a", withEndpoints(newEP("10.1.0.1")))
			es.Labels = nil
			return es
		}()},
		port: httpOf("web"),
	}, {
		name: "endpoints without conditions are ready and serving; nodeName and zone are kept",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-a", withEndpoints(newEP("10.1.0.1", local(), inZone("z1")), newEP("10.1.0.2"))),
		},
		port: httpOf("web"),
		want: []string{"10.1.0.1:8080 local", "10.1.0.2:8080"},
		check: func(t *testing.T, sp *ServicePort) {
			e := sp.AllEndpoints[0]
			if !e.Ready || !e.Serving || e.Terminating || e.NodeName != thisNode || e.Zone != "z1" {
				t.Errorf("endpoint = %+v, want ready, serving, on %s in z1", e, thisNode)
			}
			if sp.AllEndpoints[1].IsLocal {
				t.Errorf("an endpoint on %s is local", otherNode)
			}
		},
	}, {
		name: "hints are kept sorted and de-duplicated",
		svc:  newService("web"),
		slices: []*discoveryv1.EndpointSlice{
			newSlice("web", "web-a", withEndpoints(newEP("10.1.0.1", zoneHints("z2", "z1", "z2"), nodeHints("n2", "n1")))),
		},
		port: httpOf("web"),
		want: []string{"10.1.0.1:8080"},
		check: func(t *testing.T, sp *ServicePort) {
			e := sp.AllEndpoints[0]
			if e.Hints == nil || !slices.Equal(e.Hints.Zones, []string{"z1", "z2"}) || !slices.Equal(e.Hints.Nodes, []string{"n1", "n2"}) {
				t.Errorf("hints = %+v, want zones [z1 z2] and nodes [n1 n2]", e.Hints)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			family := tc.family
			if family == "" {
				family = v1.IPv4Protocol
			}
			objs := []any{tc.svc}
			for _, s := range tc.slices {
				objs = append(objs, s)
			}
			_, view, _ := build(t, family, objs...)
			sp := mustPort(t, view, tc.port)
			if got := eps(sp.AllEndpoints); !slices.Equal(got, tc.want) {
				t.Errorf("AllEndpoints = %q, want %q", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, sp)
			}
		})
	}
}
