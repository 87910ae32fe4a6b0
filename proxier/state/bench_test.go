package state

import (
	"fmt"
	"maps"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Scale of the benchmarks: 10,000 Services with 10 endpoints each, one
// EndpointSlice per Service.
const benchServices, benchEndpoints = 10000, 10

func benchObjects() ([]*v1.Service, []*discoveryv1.EndpointSlice) {
	svcs := make([]*v1.Service, benchServices)
	slices := make([]*discoveryv1.EndpointSlice, benchServices)
	for i := range benchServices {
		name := fmt.Sprintf("svc-%d", i)
		ip := fmt.Sprintf("10.%d.%d.%d", 96+i/65536, i/256%256, i%256)
		svcs[i] = newService(name, withClusterIPs([]v1.IPFamily{v1.IPv4Protocol}, ip), withRV("1"))
		slices[i] = benchSlice(i, 0, "a")
	}
	return svcs, slices
}

// benchSlice is Service i's slice; variant 1 has its first endpoint not
// ready. rv is the slice's resourceVersion.
func benchSlice(i, variant int, rv string) *discoveryv1.EndpointSlice {
	name := fmt.Sprintf("svc-%d", i)
	eps := make([]discoveryv1.Endpoint, benchEndpoints)
	for e := range benchEndpoints {
		node := otherNode
		if e == 0 {
			node = thisNode
		}
		eps[e] = newEP(fmt.Sprintf("10.%d.%d.%d", 128+e, i/256%256, i%256), onNode(node))
	}
	if variant == 1 {
		eps[0].Conditions.Ready = ptr(false)
	}
	return newSlice(name, name+"-abc", withEndpoints(eps...), withSliceRV(rv))
}

func BenchmarkInitialView(b *testing.B) {
	svcs, slices := benchObjects()
	b.ReportAllocs()
	for b.Loop() {
		tr := NewTracker(thisNode, v1.IPv4Protocol)
		tr.SetSynced(true, true, true)
		tr.OnNodeAdd(newNode(thisNode, withZone("z1")))
		for i := range svcs {
			tr.OnServiceAdd(svcs[i])
			tr.OnEndpointSliceAdd(slices[i])
		}
		view, _ := tr.Snapshot()
		if len(view.Services) != benchServices {
			b.Fatalf("view has %d services", len(view.Services))
		}
	}
}

func BenchmarkSnapshotOneEndpointChange(b *testing.B) {
	svcs, slices := benchObjects()
	tr := NewTracker(thisNode, v1.IPv4Protocol)
	tr.SetSynced(true, true, true)
	tr.OnNodeAdd(newNode(thisNode, withZone("z1")))
	for i := range svcs {
		tr.OnServiceAdd(svcs[i])
		tr.OnEndpointSliceAdd(slices[i])
	}
	tr.Snapshot()
	// Pre-built updates, so that only the tracker is measured: 64 Services
	// spread over the range, each alternating between two versions of its
	// slice, so that every step is one real endpoint change.
	const picked = 64
	var updates [picked][2]*discoveryv1.EndpointSlice
	for p := range picked {
		i := p * (benchServices / picked)
		updates[p][0] = benchSlice(i, 1, "b")
		updates[p][1] = benchSlice(i, 0, "c")
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		tr.OnEndpointSliceUpdate(nil, updates[n%picked][n/picked%2])
		_, changes := tr.Snapshot()
		if len(changes.Services) != 1 {
			b.Fatalf("step %d: %d services changed, want 1", n, len(changes.Services))
		}
		n++
	}
}

// BenchmarkCopyTopLevelMap is the floor of a changed snapshot at this scale:
// the copy-on-write clone of View.Services that immutable views require.
func BenchmarkCopyTopLevelMap(b *testing.B) {
	svcs, slices := benchObjects()
	tr := NewTracker(thisNode, v1.IPv4Protocol)
	tr.SetSynced(true, true, true)
	for i := range svcs {
		tr.OnServiceAdd(svcs[i])
		tr.OnEndpointSliceAdd(slices[i])
	}
	view, _ := tr.Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		m := maps.Clone(view.Services)
		if len(m) != benchServices {
			b.Fatal("short copy")
		}
	}
}
