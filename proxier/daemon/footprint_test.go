package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/proxier/modes/nftables"
	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// footprintKeep holds the last run's pipeline so that a -memprofile taken
// after the benchmark still shows it as in use.
var footprintKeep any

// BenchmarkFootprint measures the live heap of the proxier's pipeline at
// 10,000 Services x 10 endpoints, built as the suites' bench builds its
// objects: protobuf list responses decoded, stripped by the informer
// transform and stored as an informer stores them, folded by the tracker
// into a View, and synced by the nftables mode into a scratch namespace
// (needs root; without it that step is skipped and its metric missing).
// Each step reports its live heap (after GC) and what it allocated on the
// way and its peak: the highest heap, garbage included, as the proxier's GC
// percent lets it grow.
//
//	go test ./proxier/daemon -run '^$' -bench Footprint -benchtime 1x
func BenchmarkFootprint(b *testing.B) {
	const services, endpoints = 10000, 10
	svcBytes, sliceBytes := listResponses(b, services, endpoints)
	// As the proxier runs (cmd/proxier), so that the peak is its peak.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	for i := 0; i < b.N; i++ {
		footprintKeep = nil
		m := newMeter()

		stores := decodeIntoStores(b, svcBytes, sliceBytes)
		m.step(b, "informer")

		tr := state.NewTracker(benchNode, v1.IPv4Protocol)
		for _, o := range stores[0].List() {
			tr.OnServiceAdd(o.(*v1.Service))
		}
		for _, o := range stores[1].List() {
			tr.OnEndpointSliceAdd(o.(*discoveryv1.EndpointSlice))
		}
		tr.OnNodeAdd(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: benchNode}})
		tr.SetSynced(true, true, true)
		view, changes := tr.Snapshot()
		if len(view.Services) != services || len(view.Problems) != 0 {
			b.Fatalf("view has %d service ports and problems %v, want %d and none", len(view.Services), view.Problems, services)
		}
		m.step(b, "state")

		var mode *nftables.Proxier
		if ns, ok := footprintNS(b); ok {
			var err error
			mode, err = nftables.New(nftables.Options{NetNS: ns, MasqueradeBit: 14,
				LocalDetect: nftables.LocalDetect{Mode: nftables.DetectLocalClusterCIDR,
					ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := mode.Sync(context.Background(), view, changes); err != nil {
				b.Fatalf("full sync: %v", err)
			}
			m.step(b, "nftables")
		}
		m.done(b)
		footprintKeep = []any{stores, tr, view, mode}
	}
}

// benchNode is the node the proxier runs on; no endpoint is on it, as in
// the suites' bench.
const benchNode = "bench-node"

// footprintNS is a scratch namespace for the nftables step, or false (said
// in the log) when this process cannot make one.
func footprintNS(b *testing.B) (string, bool) {
	if os.Geteuid() != 0 {
		b.Log("nftables step skipped: a scratch namespace needs root")
		return "", false
	}
	return netnstest.New(b, "footprint", "nft"), true
}

// meter reports, per step, the live heap it added, what it allocated and
// the highest heap (garbage included) seen during it, sampled every
// millisecond under the proxier's GC percent: what peak RSS follows. All
// are above what the process held before the first step.
type meter struct {
	start, last goruntime.MemStats
	peak        atomic.Uint64
	stop        chan struct{}
	stopped     chan struct{}
}

func newMeter() *meter {
	m := &meter{stop: make(chan struct{}), stopped: make(chan struct{})}
	goruntime.GC()
	goruntime.ReadMemStats(&m.start)
	m.last = m.start
	go m.sample()
	return m
}

func (m *meter) sample() {
	defer close(m.stopped)
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		for v := s[0].Value.Uint64(); ; {
			p := m.peak.Load()
			if v <= p || m.peak.CompareAndSwap(p, v) {
				break
			}
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

func (m *meter) mb(heap uint64) float64 { return float64(int64(heap)-int64(m.start.HeapAlloc)) / 1e6 }

func (m *meter) step(b *testing.B, name string) {
	b.ReportMetric(m.mb(m.peak.Swap(0)), name+"-peak-MB")
	var now goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&now)
	b.ReportMetric(float64(int64(now.HeapAlloc)-int64(m.last.HeapAlloc))/1e6, name+"-live-MB")
	b.ReportMetric(float64(now.TotalAlloc-m.last.TotalAlloc)/1e6, name+"-alloc-MB")
	m.last = now
}

// done reports the whole pipeline's live heap.
func (m *meter) done(b *testing.B) {
	close(m.stop)
	<-m.stopped
	b.ReportMetric(m.mb(m.last.HeapAlloc), "live-MB")
}

// decodeIntoStores decodes both list responses and stores their items as a
// shared informer does: copied out of the list one by one (the reflector's
// meta.ExtractListWithAlloc, so that the list itself can go), then
// transformed in place.
func decodeIntoStores(b *testing.B, svcBytes, sliceBytes []byte) [2]cache.Store {
	var svcs v1.ServiceList
	var slices discoveryv1.EndpointSliceList
	if err := svcs.Unmarshal(svcBytes); err != nil {
		b.Fatal(err)
	}
	if err := slices.Unmarshal(sliceBytes); err != nil {
		b.Fatal(err)
	}
	var stores [2]cache.Store
	for i, list := range []runtime.Object{&svcs, &slices} {
		items, err := meta.ExtractListWithAlloc(list)
		if err != nil {
			b.Fatal(err)
		}
		stores[i] = cache.NewStore(cache.DeletionHandlingMetaNamespaceKeyFunc)
		for _, obj := range items {
			obj, err := stripUnused(obj)
			if err == nil {
				err = stores[i].Add(obj)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return stores
}

// listResponses are the protobuf bodies of the Service and EndpointSlice
// lists the API server sends for the suites' bench objects: what it adds
// (uid, resourceVersion, managedFields, defaults) included.
func listResponses(b *testing.B, services, endpoints int) ([]byte, []byte) {
	var svcs v1.ServiceList
	var slices discoveryv1.EndpointSliceList
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range services {
		name := fmt.Sprintf("svc-%05d", i)
		clusterIP := netip.AddrFrom4([4]byte{10, byte(96 + i>>16), byte(i >> 8), byte(i)}).String()
		meta := func(name string, labels map[string]string) metav1.ObjectMeta {
			return metav1.ObjectMeta{Name: name, Namespace: "bench", Labels: labels,
				UID: types.UID(fmt.Sprintf("6b1f2c3d-0000-4000-8000-%012d", i)), ResourceVersion: fmt.Sprint(1000 + i),
				CreationTimestamp: created, ManagedFields: []metav1.ManagedFieldsEntry{{
					Manager: "bench", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &created,
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:type":{}}}`)},
				}}}
		}
		svcs.Items = append(svcs.Items, v1.Service{
			ObjectMeta: meta(name, nil),
			Spec: v1.ServiceSpec{
				Type:      v1.ServiceTypeClusterIP,
				ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
				IPFamilies: []v1.IPFamily{v1.IPv4Protocol}, IPFamilyPolicy: ptr.To(v1.IPFamilyPolicySingleStack),
				SessionAffinity:       v1.ServiceAffinityNone,
				InternalTrafficPolicy: ptr.To(v1.ServiceInternalTrafficPolicyCluster),
				Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80,
					TargetPort: intstr.FromInt32(8080)}},
			},
		})
		es := discoveryv1.EndpointSlice{
			ObjectMeta: meta(name+"-bench", map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   "bench.proxyproof.dev",
			}),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP),
				Port: ptr.To(int32(8080))}},
		}
		for e := range endpoints {
			n := i*endpoints + e
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{netip.AddrFrom4([4]byte{172, byte(16 + n>>16), byte(n >> 8), byte(n)}).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		slices.Items = append(slices.Items, es)
	}
	svcBytes, err := svcs.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	sliceBytes, err := slices.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return svcBytes, sliceBytes
}
