package state

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Traffic policies, terminating fallback and topology hints: which
// endpoints each kind of traffic goes to, as upstream's CategorizeEndpoints.
func TestEndpointCategorization(t *testing.T) {
	const (
		l1 = "10.1.0.1:8080 local"
		l2 = "10.1.0.2:8080 local"
		r3 = "10.1.0.3:8080"
		r4 = "10.1.0.4:8080"
	)
	tests := []struct {
		name     string
		svc      *v1.Service
		eps      []discoveryv1.Endpoint
		nodeZone string

		cluster, local, all []string
		has                 bool
		internal, external  bool // HasInternalEndpoints, HasExternalEndpoints
	}{{
		name:    "ready endpoints serve cluster traffic and not-ready ones are left out",
		svc:     newService("web"),
		eps:     []discoveryv1.Endpoint{newEP("10.1.0.3"), newEP("10.1.0.4", notReady())},
		cluster: []string{r3}, all: []string{r3}, has: true, internal: true, external: true,
	}, {
		name:    "externalTrafficPolicy Local with a local endpoint sends external traffic only to it",
		svc:     newService("web", withNodePort(30080), withETPLocal()),
		eps:     []discoveryv1.Endpoint{newEP("10.1.0.1", local()), newEP("10.1.0.3")},
		cluster: []string{l1, r3}, local: []string{l1}, all: []string{l1, r3},
		has: true, internal: true, external: true,
	}, {
		name:    "externalTrafficPolicy Local without local endpoints has no external endpoints but still has endpoints",
		svc:     newService("web", withNodePort(30080), withETPLocal()),
		eps:     []discoveryv1.Endpoint{newEP("10.1.0.3"), newEP("10.1.0.4")},
		cluster: []string{r3, r4}, all: []string{r3, r4},
		has: true, internal: true, external: false,
	}, {
		name:  "internalTrafficPolicy Local sends cluster IP traffic only to local endpoints and needs no cluster list",
		svc:   newService("web", withITPLocal()),
		eps:   []discoveryv1.Endpoint{newEP("10.1.0.1", local()), newEP("10.1.0.3")},
		local: []string{l1}, all: []string{l1}, has: true, internal: true, external: false,
	}, {
		name: "internalTrafficPolicy Local without local endpoints drops cluster IP traffic",
		svc:  newService("web", withITPLocal()),
		eps:  []discoveryv1.Endpoint{newEP("10.1.0.3")},
		has:  true, internal: false, external: false,
	}, {
		name:    "internalTrafficPolicy Local on a NodePort Service still needs cluster endpoints for external traffic",
		svc:     newService("web", withITPLocal(), withNodePort(30080)),
		eps:     []discoveryv1.Endpoint{newEP("10.1.0.1", local()), newEP("10.1.0.3")},
		cluster: []string{l1, r3}, local: []string{l1}, all: []string{l1, r3},
		has: true, internal: true, external: true,
	}, {
		name:    "cluster traffic falls back to serving terminating endpoints when none is ready",
		svc:     newService("web"),
		eps:     []discoveryv1.Endpoint{newEP("10.1.0.3", terminating(true)), newEP("10.1.0.4", terminating(false))},
		cluster: []string{r3 + " terminating"}, all: []string{r3 + " terminating"},
		has: true, internal: true, external: true,
	}, {
		name:    "serving terminating endpoints are not used while any endpoint is ready",
		svc:     newService("web"),
		eps:     []discoveryv1.Endpoint{newEP("10.1.0.3", terminating(true)), newEP("10.1.0.4")},
		cluster: []string{r4}, all: []string{r4}, has: true, internal: true, external: true,
	}, {
		name: "local traffic falls back to local serving terminating endpoints while remote ones are ready",
		svc:  newService("web", withNodePort(30080), withETPLocal()),
		eps: []discoveryv1.Endpoint{newEP("10.1.0.1", local(), terminating(true)), newEP("10.1.0.2", local(), terminating(false)),
			newEP("10.1.0.3")},
		cluster: []string{r3}, local: []string{l1 + ",terminating"}, all: []string{l1 + ",terminating", r3},
		has: true, internal: true, external: true,
	}, {
		name: "only non-serving terminating endpoints means no endpoints at all",
		svc:  newService("web", withNodePort(30080), withETPLocal()),
		eps:  []discoveryv1.Endpoint{newEP("10.1.0.1", local(), terminating(false)), newEP("10.1.0.3", notReady())},
		has:  false, internal: false, external: false,
	}, {
		name:     "zone hints are applied when every ready endpoint has one and one matches the node's zone",
		svc:      newService("web"),
		nodeZone: "z1",
		eps: []discoveryv1.Endpoint{newEP("10.1.0.3", zoneHints("z1")), newEP("10.1.0.4", zoneHints("z2")),
			newEP("10.1.0.5", notReady())},
		cluster: []string{r3}, all: []string{r3}, has: true, internal: true, external: true,
	}, {
		name:     "zone hints are ignored when a ready endpoint has none",
		svc:      newService("web"),
		nodeZone: "z1",
		eps:      []discoveryv1.Endpoint{newEP("10.1.0.3", zoneHints("z1")), newEP("10.1.0.4")},
		cluster:  []string{r3, r4}, all: []string{r3, r4}, has: true, internal: true, external: true,
	}, {
		name:     "zone hints are ignored when none matches the node's zone",
		svc:      newService("web"),
		nodeZone: "z9",
		eps:      []discoveryv1.Endpoint{newEP("10.1.0.3", zoneHints("z1")), newEP("10.1.0.4", zoneHints("z2"))},
		cluster:  []string{r3, r4}, all: []string{r3, r4}, has: true, internal: true, external: true,
	}, {
		name:    "zone hints are ignored when the node has no zone label",
		svc:     newService("web"),
		eps:     []discoveryv1.Endpoint{newEP("10.1.0.3", zoneHints("z1")), newEP("10.1.0.4", zoneHints("z2"))},
		cluster: []string{r3, r4}, all: []string{r3, r4}, has: true, internal: true, external: true,
	}, {
		name:     "node hints are preferred over zone hints",
		svc:      newService("web"),
		nodeZone: "z1",
		eps: []discoveryv1.Endpoint{newEP("10.1.0.3", zoneHints("z1"), nodeHints(otherNode)),
			newEP("10.1.0.4", zoneHints("z1"), nodeHints(thisNode))},
		cluster: []string{r4}, all: []string{r4}, has: true, internal: true, external: true,
	}, {
		name:     "node hints that never name this node fall back to zone hints",
		svc:      newService("web"),
		nodeZone: "z1",
		eps: []discoveryv1.Endpoint{newEP("10.1.0.3", zoneHints("z1"), nodeHints(otherNode)),
			newEP("10.1.0.4", zoneHints("z2"), nodeHints("node-c"))},
		cluster: []string{r3}, all: []string{r3}, has: true, internal: true, external: true,
	}, {
		name:     "with topology and externalTrafficPolicy Local, all endpoints are the union of both lists",
		svc:      newService("web", withNodePort(30080), withETPLocal()),
		nodeZone: "z1",
		eps: []discoveryv1.Endpoint{newEP("10.1.0.1", local(), zoneHints("z2")), newEP("10.1.0.3", zoneHints("z1")),
			newEP("10.1.0.4", zoneHints("z2"))},
		cluster: []string{r3}, local: []string{l1}, all: []string{l1, r3},
		has: true, internal: true, external: true,
	}, {
		name:     "terminating endpoints are ignored when deciding whether topology hints apply",
		svc:      newService("web"),
		nodeZone: "z1",
		eps:      []discoveryv1.Endpoint{newEP("10.1.0.3", zoneHints("z1")), newEP("10.1.0.4", terminating(true))},
		cluster:  []string{r3}, all: []string{r3}, has: true, internal: true, external: true,
	}, {
		name: "no endpoints means no endpoints",
		svc:  newService("web", withNodePort(30080), withETPLocal()),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodeOpts := []nodeOpt{}
			if tc.nodeZone != "" {
				nodeOpts = append(nodeOpts, withZone(tc.nodeZone))
			}
			_, view, _ := build(t, v1.IPv4Protocol, tc.svc, newNode(thisNode, nodeOpts...),
				newSlice("web", "web-1", withEndpoints(tc.eps...)))
			sp := mustPort(t, view, httpOf("web"))
			check := func(what string, got, want []string) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("ClusterEndpoints", eps(sp.ClusterEndpoints), tc.cluster)
			check("LocalEndpoints", eps(sp.LocalEndpoints), tc.local)
			check("AllEndpoints", eps(sp.AllEndpoints), tc.all)
			if sp.HasEndpoints != tc.has {
				t.Errorf("HasEndpoints = %v, want %v", sp.HasEndpoints, tc.has)
			}
			if got := sp.HasInternalEndpoints(); got != tc.internal {
				t.Errorf("HasInternalEndpoints = %v, want %v", got, tc.internal)
			}
			if got := sp.HasExternalEndpoints(); got != tc.external {
				t.Errorf("HasExternalEndpoints = %v, want %v", got, tc.external)
			}
		})
	}
}
