package daemon

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// recordingMode remembers what every Sync was asked to do.
type recordingMode struct {
	mu    sync.Mutex
	syncs []recordedSync
	fail  bool
}

type recordedSync struct {
	full     bool
	services []string // names in changes
	view     *state.View
}

func (m *recordingMode) Name() string { return "recording" }

func (m *recordingMode) Sync(_ context.Context, view *state.View, ch *state.Changes) (modes.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return modes.Result{}, fmt.Errorf("kernel said no")
	}
	var names []string
	for n := range ch.Services {
		names = append(names, n.String())
	}
	m.syncs = append(m.syncs, recordedSync{full: ch.Full, services: names, view: view})
	return modes.Result{Full: ch.Full}, nil
}

func (m *recordingMode) Cleanup(context.Context) error { return nil }

func (m *recordingMode) waitFor(t *testing.T, what string, ok func(recordedSync) bool) recordedSync {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		for _, s := range m.syncs {
			if ok(s) {
				m.mu.Unlock()
				return s
			}
		}
		m.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Fatalf("no sync where %s; syncs: %+v", what, m.syncs)
	return recordedSync{}
}

type problemSink struct {
	mu   sync.Mutex
	seen []state.Problem
}

func (p *problemSink) Problem(pr state.Problem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, pr)
}

func web(port int32) (*v1.Service, *discoveryv1.EndpointSlice) {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To(port)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
	return svc, es
}

func startDaemon(t *testing.T, client *fake.Clientset, mode modes.Mode, events EventSink) {
	t.Helper()
	d, err := New(client, Options{NodeName: "node1", Mode: mode, MinSyncPeriod: 10 * time.Millisecond,
		SyncPeriod: time.Hour, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestTheDaemonProgramsAServiceAndThenOnlyItsChanges(t *testing.T) {
	ctx := context.Background()
	svc, es := web(8080)
	client := fake.NewClientset(svc, es)
	mode := &recordingMode{}
	startDaemon(t, client, mode, nil)

	first := mode.waitFor(t, "the first, full sync holds default/web", func(s recordedSync) bool {
		return s.full && s.view.Services[state.ServicePortName{NamespacedName: key("default", "web"), Port: "http", Protocol: v1.ProtocolTCP}] != nil
	})
	if len(first.view.Problems) != 0 {
		t.Errorf("problems in a clean view: %v", first.view.Problems)
	}

	_, es2 := web(9090)
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mode.waitFor(t, "a partial sync names only default/web:http", func(s recordedSync) bool {
		return !s.full && len(s.services) == 1 && s.services[0] == "default/web:http"
	})
}

func TestABadServiceIsReportedOnceAndTheOthersAreProgrammed(t *testing.T) {
	good, es := web(8080)
	bad := good.DeepCopy()
	bad.Name = "bad"
	bad.Spec.ClusterIP, bad.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
	bad.Spec.Ports[0].Protocol = "ICMP"
	client := fake.NewClientset(good, es, bad)
	mode := &recordingMode{}
	sink := &problemSink{}
	startDaemon(t, client, mode, sink)

	mode.waitFor(t, "default/web is programmed despite default/bad", func(s recordedSync) bool {
		return len(s.view.Services) == 1 && len(s.view.Problems) == 1
	})
	// Another change: the problem is still there but must not be reported again.
	_, es2 := web(9090)
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), es2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mode.waitFor(t, "the endpoint change is synced", func(s recordedSync) bool { return !s.full && len(s.services) == 1 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.seen) != 1 || sink.seen[0].Object.Name != "bad" {
		t.Fatalf("problems reported: %+v, want default/bad once", sink.seen)
	}
}

func TestNewRefusesToStartWithoutANodeNameOrMode(t *testing.T) {
	if _, err := New(fake.NewClientset(), Options{Mode: &recordingMode{}}); err == nil {
		t.Error("started without a node name")
	}
	if _, err := New(fake.NewClientset(), Options{NodeName: "n"}); err == nil {
		t.Error("started without a mode")
	}
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func TestCachedObjectsLoseOnlyWhatNoProxierReads(t *testing.T) {
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "6b1f2c3d-0000-4000-8000-000000000001",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		Annotations: map[string]string{
			v1.LastAppliedConfigAnnotation:           `{"a":"whole copy"}`,
			v1.AnnotationLoadBalancerSourceRangesKey: "10.0.0.0/8",
			"ipvs.proxyproof.dev/scheduler":          "sh",
		}}}
	out, err := stripUnused(svc)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.Service)
	if len(got.ManagedFields) != 0 || got.UID != "" {
		t.Errorf("managedFields or UID kept: %v, %q", got.ManagedFields, got.UID)
	}
	if _, ok := got.Annotations[v1.LastAppliedConfigAnnotation]; ok {
		t.Error("the last-applied annotation was kept")
	}
	if got.Annotations[v1.AnnotationLoadBalancerSourceRangesKey] != "10.0.0.0/8" || got.Annotations["ipvs.proxyproof.dev/scheduler"] != "sh" {
		t.Errorf("annotations the proxier reads were dropped: %v", got.Annotations)
	}
	node, zone := "node-a", "zone-a"
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Service", Name: "web"}}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: &node, Zone: &zone,
			Hostname: ptr.To("web-0"), TargetRef: &v1.ObjectReference{Kind: "Pod", Name: "web-0"},
			DeprecatedTopology: map[string]string{"k": "v"},
			Hints:              &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: zone}}}}},
	}
	if _, err := stripUnused(slice); err != nil {
		t.Fatal(err)
	}
	e := slice.Endpoints[0]
	if e.TargetRef != nil || e.Hostname != nil || e.DeprecatedTopology != nil || slice.OwnerReferences != nil {
		t.Errorf("unused fields kept: %+v, owners %v", e, slice.OwnerReferences)
	}
	if e.Addresses[0] != "10.0.0.1" || *e.NodeName != node || *e.Zone != zone || e.Hints == nil || slice.Labels[discoveryv1.LabelServiceName] != "web" {
		t.Errorf("fields the proxier reads were dropped: %+v, labels %v", e, slice.Labels)
	}
	// As decoded: room for more endpoints than there are.
	decoded := make([]discoveryv1.Endpoint, 3, 4)
	for i := range decoded {
		decoded[i] = discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.0.0.%d", i+1)}, NodeName: &node}
	}
	slice.Endpoints = decoded
	if _, err := stripUnused(slice); err != nil {
		t.Fatal(err)
	}
	if len(slice.Endpoints) != 3 || cap(slice.Endpoints) != 3 {
		t.Errorf("endpoints: length %d capacity %d, want both 3", len(slice.Endpoints), cap(slice.Endpoints))
	}
	for i, e := range slice.Endpoints {
		if want := fmt.Sprintf("10.0.0.%d", i+1); e.Addresses[0] != want || *e.NodeName != node {
			t.Errorf("endpoints[%d] = %+v, want address %s on %s", i, e, want, node)
		}
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: svc}
	if out, err := stripUnused(tomb); err != nil || out != any(tomb) {
		t.Errorf("a tombstone came back as %v, %v; want it unchanged", out, err)
	}
}

// slowHandler delivers each event a little late, as a busy node does.
type slowHandler struct{ cache.ResourceEventHandler }

func (h slowHandler) OnAdd(obj any, initial bool) {
	time.Sleep(2 * time.Millisecond)
	h.ResourceEventHandler.OnAdd(obj, initial)
}

// The first sync after a start programs every Service with its endpoints,
// however late the informers hand their initial list to the tracker: a
// first sync made from Services without their EndpointSlices rejects
// their connections until the next one.
func TestTheFirstSyncWaitsForEveryObjectTheInformersListed(t *testing.T) {
	const n = 200
	var objs []runtime.Object
	for i := range n {
		svc, es := web(8080)
		svc.Name, svc.Spec.ClusterIP = fmt.Sprintf("web-%d", i), fmt.Sprintf("10.96.%d.%d", i/250, 1+i%250)
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
		es.Name, es.Labels[discoveryv1.LabelServiceName] = svc.Name+"-1", svc.Name
		objs = append(objs, svc, es)
	}
	mode := &recordingMode{}
	d, err := New(fake.NewClientset(objs...), Options{NodeName: "node1", Mode: mode, MinSyncPeriod: 10 * time.Millisecond, SyncPeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d.wrapHandler = func(h cache.ResourceEventHandler) cache.ResourceEventHandler { return slowHandler{h} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	first := mode.waitFor(t, "a first sync", func(recordedSync) bool { return true })
	withEndpoints := 0
	for _, sp := range first.view.Services {
		if sp.HasEndpoints {
			withEndpoints++
		}
	}
	if len(first.view.Services) != n || withEndpoints != n {
		t.Fatalf("the first sync programmed %d Services, %d with endpoints; want all %d with theirs", len(first.view.Services), withEndpoints, n)
	}
}
