package state

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

func changed(c *Changes) []string {
	var out []string
	for n := range c.Services {
		out = append(out, n.String()+"/"+string(n.Protocol))
	}
	slices.Sort(out)
	return out
}

func notified(tr *Tracker) bool {
	select {
	case <-tr.Changed():
		return true
	default:
		return false
	}
}

func TestTheFirstSnapshotIsFullAndListsEveryServicePort(t *testing.T) {
	_, view, changes := build(t, v1.IPv4Protocol, newService("a"), newService("b"), newNode(thisNode))
	if !changes.Full {
		t.Errorf("first snapshot is not Full")
	}
	if got, want := changed(changes), []string{"default/a:http/TCP", "default/b:http/TCP"}; !slices.Equal(got, want) {
		t.Errorf("Changes.Services = %v, want %v", got, want)
	}
	if changes.ServiceEvents != 2 || view.Family != v1.IPv4Protocol || view.Node.Name != thisNode {
		t.Errorf("ServiceEvents %d, family %s, node %q", changes.ServiceEvents, view.Family, view.Node.Name)
	}
}

// Change detection: only ServicePorts whose rendered state differs are
// reported, and unchanged ones keep their pointer.
func TestChangeDetection(t *testing.T) {
	sliceA := func(opts ...epOpt) *discoveryv1.EndpointSlice {
		return newSlice("a", "a-1", withEndpoints(newEP("10.1.0.1", opts...), newEP("10.1.0.2")))
	}
	tests := []struct {
		name     string
		step     func(tr *Tracker)
		want     []string
		notify   bool
		svcEvts  int
		epEvts   int
		gone     []ServicePortName
		wantFull bool
	}{{
		name:   "an update with an identical object is not a change",
		step:   func(tr *Tracker) { tr.OnServiceUpdate(newService("a"), newService("a")) },
		notify: true, svcEvts: 1,
	}, {
		name:   "an informer resync with the same resourceVersion does not even notify",
		step:   func(tr *Tracker) { tr.OnServiceUpdate(nil, newService("b", withRV("7"))) },
		notify: false, svcEvts: 1,
	}, {
		name:   "an identical EndpointSlice update is not a change",
		step:   func(tr *Tracker) { tr.OnEndpointSliceUpdate(nil, sliceA()) },
		notify: true, epEvts: 1,
	}, {
		name:   "one endpoint change reports exactly that ServicePort",
		step:   func(tr *Tracker) { tr.OnEndpointSliceUpdate(nil, sliceA(notReady())) },
		want:   []string{"default/a:http/TCP"},
		notify: true, epEvts: 1,
	}, {
		name: "a Service port change reports only the ports that differ",
		step: func(tr *Tracker) {
			tr.OnServiceUpdate(nil, newService("c", withPorts(svcPort("http", v1.ProtocolTCP, 81), svcPort("dns", v1.ProtocolUDP, 53))))
		},
		want:   []string{"default/c:http/TCP"},
		notify: true, svcEvts: 1,
	}, {
		name:   "a deleted Service is reported and absent from the view",
		step:   func(tr *Tracker) { tr.OnServiceDelete(newService("a")) },
		want:   []string{"default/a:http/TCP"},
		gone:   []ServicePortName{httpOf("a")},
		notify: true, svcEvts: 1,
	}, {
		name:   "a deleted EndpointSlice removes its endpoints",
		step:   func(tr *Tracker) { tr.OnEndpointSliceDelete(sliceA()) },
		want:   []string{"default/a:http/TCP"},
		notify: true, epEvts: 1,
	}, {
		name: "a slice that changes hands moves its endpoints to the other Service",
		step: func(tr *Tracker) {
			tr.OnEndpointSliceUpdate(nil, newSlice("b", "a-1", withEndpoints(newEP("10.1.0.1"))))
		},
		want:   []string{"default/a:http/TCP", "default/b:http/TCP"},
		notify: true, epEvts: 1,
	}, {
		name:     "RequestFull makes the next snapshot Full without inventing changes",
		step:     func(tr *Tracker) { tr.RequestFull() },
		notify:   true,
		wantFull: true,
	}, {
		name: "an endpoint change for a Service that does not exist changes nothing",
		step: func(tr *Tracker) {
			tr.OnEndpointSliceAdd(newSlice("ghost", "ghost-1", withEndpoints(newEP("10.1.0.9"))))
		},
		notify: true, epEvts: 1,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, before, _ := build(t, v1.IPv4Protocol, newService("a"), newService("b", withRV("7")),
				newService("c", withPorts(svcPort("http", v1.ProtocolTCP, 80), svcPort("dns", v1.ProtocolUDP, 53))),
				sliceA(), newSlice("b", "b-1", withEndpoints(newEP("10.1.0.5"))), newSlice("c", "c-1"), newNode(thisNode))
			beforeServices := maps.Clone(before.Services)
			if notified(tr) {
				t.Fatalf("a notification is pending right after a snapshot")
			}

			tc.step(tr)
			if got := notified(tr); got != tc.notify {
				t.Errorf("Changed notified = %v, want %v", got, tc.notify)
			}
			after, changes := tr.Snapshot()
			if got := changed(changes); !slices.Equal(got, tc.want) {
				t.Errorf("Changes.Services = %v, want %v", got, tc.want)
			}
			if changes.Full != tc.wantFull {
				t.Errorf("Full = %v, want %v", changes.Full, tc.wantFull)
			}
			if changes.ServiceEvents != tc.svcEvts || changes.EndpointEvents != tc.epEvts {
				t.Errorf("events = %d service, %d endpoint; want %d, %d", changes.ServiceEvents, changes.EndpointEvents, tc.svcEvts, tc.epEvts)
			}
			for _, n := range tc.gone {
				if _, ok := after.Services[n]; ok {
					t.Errorf("%v is still in the view", n)
				}
			}
			for n, sp := range after.Services {
				_, isChanged := changes.Services[n]
				if old := beforeServices[n]; !isChanged && old != sp {
					t.Errorf("%v is unchanged but got a new pointer", n)
				}
			}
			// Views are immutable: the earlier one still holds what it held.
			if !maps.Equal(before.Services, beforeServices) {
				t.Errorf("the previous View's map was modified")
			}
			if _, c := tr.Snapshot(); !c.Empty() {
				t.Errorf("a snapshot with nothing new is not empty: %+v", c)
			}
		})
	}
}

func TestSyncGating(t *testing.T) {
	tr := NewTracker(thisNode, v1.IPv4Protocol)
	tr.OnServiceAdd(newService("a"))
	if _, c := tr.Snapshot(); !c.Full {
		t.Errorf("a snapshot before sync is not Full")
	}
	if _, c := tr.Snapshot(); !c.Full {
		t.Errorf("the second snapshot before sync is not Full: a partial view would stay programmed")
	}
	tr.SetSynced(true, true, false)
	if tr.HasSynced() {
		t.Errorf("HasSynced with the node informer not synced")
	}
	notified(tr)
	tr.SetSynced(false, false, true)
	if !tr.HasSynced() || !notified(tr) {
		t.Errorf("the last informer syncing does not notify")
	}
	if _, c := tr.Snapshot(); !c.Full {
		t.Errorf("the first snapshot after sync is not Full")
	}
	if _, c := tr.Snapshot(); c.Full {
		t.Errorf("the second snapshot after sync is Full")
	}
}

func TestNodeEvents(t *testing.T) {
	topo := newSlice("web", "web-1", withEndpoints(newEP("10.1.0.3", zoneHints("z1")), newEP("10.1.0.4", zoneHints("z2"))))
	tests := []struct {
		name       string
		step       func(tr *Tracker)
		notify     bool
		full       bool
		changed    []string
		deleting   bool
		zone       string
		clusterEPs []string
	}{{
		name:   "a zone change is Full and re-applies topology to every Service",
		step:   func(tr *Tracker) { tr.OnNodeUpdate(nil, newNode(thisNode, withZone("z2"))) },
		notify: true, full: true, zone: "z2",
		changed:    []string{"default/web:http/TCP"},
		clusterEPs: []string{"10.1.0.4:8080"},
	}, {
		name:       "another label change is neither notified nor Full, but the view has it",
		step:       func(tr *Tracker) { tr.OnNodeUpdate(nil, newNode(thisNode, withZone("z1"), withLabel("role", "edge"))) },
		zone:       "z1",
		clusterEPs: []string{"10.1.0.3:8080"},
	}, {
		name: "a node IP change is Full",
		step: func(tr *Tracker) {
			tr.OnNodeUpdate(nil, newNode(thisNode, withZone("z1"), withAddress(v1.NodeInternalIP, "192.168.0.9")))
		},
		notify: true, full: true, zone: "z1",
		clusterEPs: []string{"10.1.0.3:8080"},
	}, {
		name:   "node deletion is Full, keeps the last zone and marks the node deleting",
		step:   func(tr *Tracker) { tr.OnNodeDelete(newNode(thisNode)) },
		notify: true, full: true, deleting: true, zone: "z1",
		clusterEPs: []string{"10.1.0.3:8080"},
	}, {
		name:   "a deletionTimestamp marks the node deleting",
		step:   func(tr *Tracker) { tr.OnNodeUpdate(nil, newNode(thisNode, withZone("z1"), withDeletionTimestamp())) },
		notify: true, full: true, deleting: true, zone: "z1",
		clusterEPs: []string{"10.1.0.3:8080"},
	}, {
		name: "other nodes are ignored",
		step: func(tr *Tracker) {
			tr.OnNodeUpdate(nil, newNode(otherNode, withZone("z2")))
			tr.OnNodeDelete(newNode(otherNode))
		},
		zone:       "z1",
		clusterEPs: []string{"10.1.0.3:8080"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _, _ := build(t, v1.IPv4Protocol, newService("web"), topo, newNode(thisNode, withZone("z1")))
			tc.step(tr)
			if got := notified(tr); got != tc.notify {
				t.Errorf("Changed notified = %v, want %v", got, tc.notify)
			}
			view, changes := tr.Snapshot()
			if changes.Full != tc.full || !slices.Equal(changed(changes), tc.changed) {
				t.Errorf("Full = %v, changed %v; want %v, %v", changes.Full, changed(changes), tc.full, tc.changed)
			}
			if view.Node.Deleting != tc.deleting || view.Node.Zone != tc.zone {
				t.Errorf("node = %+v, want deleting %v zone %q", view.Node, tc.deleting, tc.zone)
			}
			if got := eps(mustPort(t, view, httpOf("web")).ClusterEndpoints); !slices.Equal(got, tc.clusterEPs) {
				t.Errorf("ClusterEndpoints = %v, want %v", got, tc.clusterEPs)
			}
		})
	}
}

func TestTriggerTimes(t *testing.T) {
	later := time.Now().Add(time.Minute).UTC()
	at := func(d time.Duration) string { return later.Add(d).Format(time.RFC3339Nano) }
	tr, _, _ := build(t, v1.IPv4Protocol, newService("a"), newService("b"),
		newSlice("a", "a-1", withEndpoints(newEP("10.1.0.1"))), newSlice("b", "b-1", withEndpoints(newEP("10.1.0.2"))))

	tr.OnEndpointSliceUpdate(nil, newSlice("a", "a-1", withTriggerTime(at(2*time.Second)), withEndpoints(newEP("10.1.0.9"))))
	tr.OnEndpointSliceUpdate(nil, newSlice("a", "a-2", withTriggerTime(at(time.Second)), withEndpoints(newEP("10.1.0.8"))))
	// Same endpoints, new annotation: nothing to program, nothing to measure.
	tr.OnEndpointSliceUpdate(nil, newSlice("b", "b-1", withTriggerTime(at(0)), withEndpoints(newEP("10.1.0.2"))))
	// Older than the tracker: a restart must not report it.
	tr.OnEndpointSliceUpdate(nil, newSlice("a", "a-3", withTriggerTime("2001-01-01T00:00:00Z"), withEndpoints(newEP("10.1.0.7"))))
	_, changes := tr.Snapshot()

	var got []string
	for _, tt := range changes.TriggerTimes {
		got = append(got, tt.Format(time.RFC3339Nano))
	}
	if want := []string{at(time.Second), at(2 * time.Second)}; !slices.Equal(got, want) {
		t.Errorf("TriggerTimes = %v, want %v", got, want)
	}
	if _, c := tr.Snapshot(); len(c.TriggerTimes) != 0 {
		t.Errorf("trigger times reported twice: %v", c.TriggerTimes)
	}
}

func TestInformerHandlers(t *testing.T) {
	tr := NewTracker(thisNode, v1.IPv4Protocol)
	tr.SetSynced(true, true, true)
	svcs, eslices, nodes := tr.ServiceHandler(), tr.EndpointSliceHandler(), tr.NodeHandler()
	svcs.OnAdd(newService("a"), true)
	svcs.OnAdd(newService("b"), true)
	eslices.OnAdd(newSlice("a", "a-1", withEndpoints(newEP("10.1.0.1"))), true)
	nodes.OnAdd(newNode(thisNode, withZone("z1")), true)
	svcs.OnAdd("not a service", false) // logged and ignored
	view, _ := tr.Snapshot()
	if len(view.Services) != 2 || !mustPort(t, view, httpOf("a")).HasEndpoints || view.Node.Zone != "z1" {
		t.Fatalf("after adds: services %v, node %+v", keys(view), view.Node)
	}

	svcs.OnUpdate(newService("b"), newService("b", withPorts(svcPort("http", v1.ProtocolTCP, 81))))
	svcs.OnDelete(cache.DeletedFinalStateUnknown{Key: "default/a", Obj: newService("a")})
	eslices.OnDelete(cache.DeletedFinalStateUnknown{Key: "default/a-1", Obj: newSlice("a", "a-1")})
	nodes.OnDelete(newNode(thisNode))
	view, changes := tr.Snapshot()
	if got, want := changed(changes), []string{"default/a:http/TCP", "default/b:http/TCP"}; !slices.Equal(got, want) {
		t.Errorf("changed = %v, want %v", got, want)
	}
	if _, ok := view.Services[httpOf("a")]; ok {
		t.Errorf("a tombstone did not delete Service a")
	}
	if mustPort(t, view, httpOf("b")).Port != 81 || !view.Node.Deleting {
		t.Errorf("update or node delete lost: b %+v, node %+v", view.Services[httpOf("b")], view.Node)
	}
	if changes.ServiceEvents != 2 || changes.EndpointEvents != 1 {
		t.Errorf("events = %d, %d; want 2, 1", changes.ServiceEvents, changes.EndpointEvents)
	}
}

// Handlers on informer goroutines while the loop snapshots; meant for
// go test -race.
func TestConcurrentHandlersAndSnapshots(t *testing.T) {
	tr := NewTracker(thisNode, v1.IPv4Protocol)
	tr.SetSynced(true, true, true)
	const services, rounds = 20, 200
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for r := range rounds {
			for i := range services {
				name := fmt.Sprintf("s%d", i)
				tr.OnServiceUpdate(nil, newService(name, withPorts(svcPort("http", v1.ProtocolTCP, int32(80+r%3)))))
			}
		}
	}()
	go func() {
		defer wg.Done()
		for r := range rounds {
			for i := range services {
				name := fmt.Sprintf("s%d", i)
				tr.OnEndpointSliceUpdate(nil, newSlice(name, name+"-1", withEndpoints(newEP(fmt.Sprintf("10.1.%d.%d", i, r%250+1)))))
			}
		}
	}()
	go func() {
		defer wg.Done()
		for r := range rounds {
			tr.OnNodeUpdate(nil, newNode(thisNode, withZone(fmt.Sprintf("z%d", r%2))))
			if r%50 == 0 {
				tr.RequestFull()
			}
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var last *View
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tr.Changed():
		}
		last, _ = tr.Snapshot()
		for _, sp := range last.Services { // read the view while handlers run
			_ = sp.HasInternalEndpoints()
		}
	}
	last, _ = tr.Snapshot()
	if len(last.Services) != services {
		t.Fatalf("final view has %d services, want %d", len(last.Services), services)
	}
	for i := range services {
		sp := mustPort(t, last, httpOf(fmt.Sprintf("s%d", i)))
		want := fmt.Sprintf("10.1.%d.%d:8080", i, (rounds-1)%250+1)
		if got := eps(sp.ClusterEndpoints); len(got) != 1 || got[0] != want {
			t.Errorf("%v endpoints = %v, want [%s]", sp.Name, got, want)
		}
	}
}
