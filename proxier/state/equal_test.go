package state

import (
	"net/netip"
	"reflect"
	"strconv"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// samePort decides what a mode is told to reprogram, so it must look at
// every field: a new field that it ignores would make changes go unseen.
func TestSamePortNoticesAChangeInEveryField(t *testing.T) {
	ep := Endpoint{IP: netip.MustParseAddr("10.1.0.1"), Port: 8080, Ready: true, Serving: true}
	base := ServicePort{
		Name: httpOf("web"), Protocol: v1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.0.0.1"), Port: 80,
		ClusterEndpoints: []Endpoint{ep}, AllEndpoints: []Endpoint{ep}, HasEndpoints: true,
	}
	epChange := map[string]func(e *Endpoint){
		"IP":          func(e *Endpoint) { e.IP = netip.MustParseAddr("10.1.0.2") },
		"Port":        func(e *Endpoint) { e.Port = 9090 },
		"NodeName":    func(e *Endpoint) { e.NodeName = "n" },
		"Zone":        func(e *Endpoint) { e.Zone = "z" },
		"Ready":       func(e *Endpoint) { e.Ready = false },
		"Serving":     func(e *Endpoint) { e.Serving = false },
		"Terminating": func(e *Endpoint) { e.Terminating = true },
		"IsLocal":     func(e *Endpoint) { e.IsLocal = true },
		"Hints":       func(e *Endpoint) { e.Hints = &Hints{Zones: []string{"z"}} },
	}
	spChange := map[string]func(s *ServicePort){
		"Name":                     func(s *ServicePort) { s.Name.Port = "other" },
		"Protocol":                 func(s *ServicePort) { s.Protocol = v1.ProtocolUDP },
		"ClusterIP":                func(s *ServicePort) { s.ClusterIP = netip.MustParseAddr("10.0.0.2") },
		"Port":                     func(s *ServicePort) { s.Port = 81 },
		"NodePort":                 func(s *ServicePort) { s.NodePort = 30000 },
		"ExternalIPs":              func(s *ServicePort) { s.ExternalIPs = addrs("192.0.2.1") },
		"LoadBalancerIPs":          func(s *ServicePort) { s.LoadBalancerIPs = addrs("192.0.2.1") },
		"LoadBalancerSourceRanges": func(s *ServicePort) { s.LoadBalancerSourceRanges = prefixes("10.0.0.0/8") },
		"ExternalPolicyLocal":      func(s *ServicePort) { s.ExternalPolicyLocal = true },
		"InternalPolicyLocal":      func(s *ServicePort) { s.InternalPolicyLocal = true },
		"HealthCheckNodePort":      func(s *ServicePort) { s.HealthCheckNodePort = 32000 },
		"SessionAffinity":          func(s *ServicePort) { s.SessionAffinity = true },
		"StickySeconds":            func(s *ServicePort) { s.StickySeconds = 5 },
		"Scheduler":                func(s *ServicePort) { s.Scheduler = "sh" },
		"ClusterEndpoints":         func(s *ServicePort) { s.ClusterEndpoints = nil },
		"LocalEndpoints":           func(s *ServicePort) { s.LocalEndpoints = []Endpoint{ep} },
		"AllEndpoints":             func(s *ServicePort) { s.AllEndpoints = nil },
		"HasEndpoints":             func(s *ServicePort) { s.HasEndpoints = false },
	}
	for i := range reflect.TypeFor[ServicePort]().NumField() {
		name := reflect.TypeFor[ServicePort]().Field(i).Name
		t.Run("a change of ServicePort."+name+" is a change", func(t *testing.T) {
			change, ok := spChange[name]
			if !ok {
				t.Fatalf("no mutation for field %s: add it here and to samePort", name)
			}
			changed := base
			change(&changed)
			if samePort(&base, &changed) {
				t.Errorf("samePort ignores %s", name)
			}
		})
	}
	for i := range reflect.TypeFor[Endpoint]().NumField() {
		name := reflect.TypeFor[Endpoint]().Field(i).Name
		t.Run("a change of Endpoint."+name+" is a change", func(t *testing.T) {
			change, ok := epChange[name]
			if !ok {
				t.Fatalf("no mutation for field %s: add it here and to sameEndpoints", name)
			}
			e := ep
			change(&e)
			changed := base
			changed.AllEndpoints = []Endpoint{e}
			if samePort(&base, &changed) {
				t.Errorf("samePort ignores Endpoint.%s", name)
			}
		})
	}
	t.Run("hints are compared by content", func(t *testing.T) {
		withHints := func(h *Hints) *ServicePort {
			e := ep
			e.Hints = h
			c := base
			c.AllEndpoints = []Endpoint{e}
			return &c
		}
		a := withHints(&Hints{Zones: []string{"z"}, Nodes: []string{"n"}})
		if !samePort(a, withHints(&Hints{Zones: []string{"z"}, Nodes: []string{"n"}})) {
			t.Errorf("samePort sees a difference in equal hints held apart")
		}
		if samePort(a, withHints(&Hints{Zones: []string{"z"}, Nodes: []string{"m"}})) {
			t.Errorf("samePort ignores a change of node hints")
		}
		if !samePort(withHints(nil), withHints(&Hints{})) {
			t.Errorf("samePort tells no hints from empty hints")
		}
	})
	t.Run("a copy with fresh slices is the same", func(t *testing.T) {
		c := base
		c.ClusterEndpoints = append([]Endpoint(nil), base.ClusterEndpoints...)
		if !samePort(&base, &c) {
			t.Errorf("samePort sees a difference in an equal copy")
		}
	})
}

// Endpoint is the most numerous thing the proxier holds; a field added or
// moved so that it grows should be a decision, not an accident.
func TestEndpointStaysSeventyTwoBytes(t *testing.T) {
	if strconv.IntSize != 64 {
		t.Skip("the size is for 64-bit platforms")
	}
	if got := reflect.TypeFor[Endpoint]().Size(); got != 72 {
		t.Errorf("Endpoint is %d bytes, want 72 (keep the flags next to Port)", got)
	}
}
