package bench

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// The objects every proxier sees: selector-less Services (no controller
// writes slices for them) and one EndpointSlice each, written by us.
const (
	namespace    = "bench"
	portName     = "http"
	servicePort  = 80
	endpointPort = 8080
	nodeName     = "bench-node"
)

// endpointBase is where endpoint addresses start; the backend namespace
// accepts every address of 172.16.0.0/12 (a local route), so any endpoint
// answers a connection.
var endpointBase = netip.MustParseAddr("172.16.0.1")

// service is one Service and its slice as last written.
type service struct {
	name      string
	clusterIP string
	mu        sync.Mutex
	slice     *discoveryv1.EndpointSlice
}

// portName is upstream's ServicePortName.String(): "ns/name:port".
func (s *service) portName() string { return namespace + "/" + s.name + ":" + portName }

// ips are the slice's current endpoint addresses.
func (s *service) ips() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ep := range s.slice.Endpoints {
		out = append(out, ep.Addresses[0])
	}
	return out
}

// objects owns the created Services and hands out fresh endpoint addresses.
type objects struct {
	client   kubernetes.Interface
	services []*service
	mu       sync.Mutex
	next     netip.Addr
}

func addrAt(i int) netip.Addr {
	a := endpointBase.As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// freshIP is an endpoint address no object has used yet.
func (o *objects) freshIP() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ip := o.next
	o.next = ip.Next()
	return ip.String()
}

// createObjects makes the namespace, the Node the proxiers run as, and
// sc.Services Services with sc.Endpoints endpoints each, with workers
// writing concurrently.
func createObjects(ctx context.Context, client kubernetes.Interface, sc Scale, nodeIP string) (*objects, error) {
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", namespace, err)
	}
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Status:     v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: nodeIP}}},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("node %s: %w", nodeName, err)
	}
	o := &objects{client: client, services: make([]*service, sc.Services), next: addrAt(sc.Services * sc.Endpoints)}
	const workers = 32
	idx := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				s, err := createService(ctx, client, i, sc.Endpoints)
				if err != nil {
					errc <- err
					return
				}
				o.services[i] = s
			}
		}()
	}
	var err error
feed:
	for i := 0; i < sc.Services; i++ {
		select {
		case idx <- i:
		case err = <-errc:
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	waitPodCIDR(ctx, client)
	return o, nil
}

// waitPodCIDR waits (up to 30 s) for the controller-manager to give the
// Node its pod CIDR. A proxier resyncs everything when the CIDR arrives,
// and at small scales the objects are ready before it does: the first
// row's proxier then took that resync in the middle of its changes (one
// change in ten held back ~0.9 s by minSyncPeriod, in that row only).
func waitPodCIDR(ctx context.Context, client kubernetes.Interface) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	klog.InfoS("The Node has no pod CIDR yet; the proxiers may resync when it comes", "node", nodeName)
}

func createService(ctx context.Context, client kubernetes.Interface, i, endpoints int) (*service, error) {
	name := fmt.Sprintf("svc-%05d", i)
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP,
			Ports: []v1.ServicePort{{Name: portName, Protocol: v1.ProtocolTCP, Port: servicePort,
				TargetPort: intstr.FromInt32(endpointPort)}},
		},
	}
	got, err := create(ctx, func() (*v1.Service, error) {
		return client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", namespace, name, err)
	}
	ips := make([]string, endpoints)
	for j := range ips {
		ips[j] = addrAt(i*endpoints + j).String()
	}
	slice, err := create(ctx, func() (*discoveryv1.EndpointSlice, error) {
		return client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, sliceFor(name, ips), metav1.CreateOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: endpoint slice: %w", namespace, name, err)
	}
	return &service{name: name, clusterIP: got.Spec.ClusterIP, slice: slice}, nil
}

// create retries a write a few times: a busy apiserver on a shared
// machine times out now and then.
func create[T any](ctx context.Context, do func() (T, error)) (T, error) {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		got, err := do()
		if err == nil {
			return got, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	var zero T
	return zero, last
}

func sliceFor(svc string, ips []string) *discoveryv1.EndpointSlice {
	ready := true
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: svc + "-bench", Namespace: namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc,
				discoveryv1.LabelManagedBy:   "bench.proxyproof.dev",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: ptr(portName), Protocol: ptr(v1.ProtocolTCP),
			Port: ptr(int32(endpointPort))}},
	}
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		})
	}
	return es
}

func ptr[T any](v T) *T { return &v }

// replaceEndpoint writes s's slice with endpoint j's address replaced by
// ip, and returns when the API server accepted it.
func (o *objects) replaceEndpoint(ctx context.Context, s *service, j int, ip string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.slice.DeepCopy()
	next.Endpoints[j%len(next.Endpoints)].Addresses = []string{ip}
	got, err := o.client.DiscoveryV1().EndpointSlices(namespace).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("service %s/%s: endpoint slice update: %w", namespace, s.name, err)
	}
	s.slice = got
	return nil
}
