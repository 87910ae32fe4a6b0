package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// idleWorkers create idle Services concurrently: one by one, 2,000
// Services and their EndpointSlices take minutes through the API server.
const idleWorkers = 8

// IdleEndpoint is the endpoint of idle Service i: an address in
// 198.19.0.0/16 (the benchmarking range beside the underlay's
// 198.18.0.0/24), which no pod and no node has, so that no rule for it
// is ever mistaken for a real endpoint's and nothing is ever sent there.
func IdleEndpoint(i int) string {
	return fmt.Sprintf("198.19.%d.%d", i/250, i%250+1)
}

// CreateIdleServices creates n selector-less ClusterIP Services in ns
// (port http 80/TCP), each with one ready endpoint (IdleEndpoint) in a
// hand-written EndpointSlice: load for the proxier that no probe ever
// touches. It returns them as the API server filled them in.
func (f *Framework) CreateIdleServices(ctx context.Context, ns string, n int) ([]*corev1.Service, error) {
	if n > 250*256 {
		return nil, fmt.Errorf("idle services: %d, at most %d fit 198.19.0.0/16", n, 250*256)
	}
	cfg, err := f.Cluster.RestConfig()
	if err != nil {
		return nil, fmt.Errorf("idle services: %w", err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("idle services: client: %w", err)
	}
	out := make([]*corev1.Service, n)
	next := make(chan int)
	errs := make([]error, idleWorkers)
	var wg sync.WaitGroup
	for w := range idleWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[w] != nil {
					continue
				}
				out[i], errs[w] = createIdle(ctx, client, ns, i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, errors.Join(errs...)
}

// idleRetry retries a create the API server could not answer in time: a
// loaded API server times requests out (504) and the create may still
// have happened, which the next try sees as AlreadyExists.
var idleRetry = wait.Backoff{Steps: 6, Duration: time.Second, Factor: 2, Jitter: 0.2}

func transient(err error) bool {
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err)
}

// createOrGet creates an object with create, retrying transient errors;
// an object already there (an earlier try that timed out) is read with get.
func createOrGet[T any](create, get func() (T, error)) (T, error) {
	var out T
	err := retry.OnError(idleRetry, transient, func() error {
		var err error
		out, err = create()
		if apierrors.IsAlreadyExists(err) {
			out, err = get()
		}
		return err
	})
	return out, err
}

func createIdle(ctx context.Context, client kubernetes.Interface, ns string, i int) (*corev1.Service, error) {
	name := fmt.Sprintf("idle-%05d", i)
	svcs, slices := client.CoreV1().Services(ns), client.DiscoveryV1().EndpointSlices(ns)
	svc, err := createOrGet(func() (*corev1.Service, error) {
		return svcs.Create(ctx, idleService(ns, name), metav1.CreateOptions{})
	},
		func() (*corev1.Service, error) { return svcs.Get(ctx, name, metav1.GetOptions{}) })
	if err != nil {
		return nil, fmt.Errorf("idle service %s/%s: %w", ns, name, err)
	}
	_, err = createOrGet(func() (*discoveryv1.EndpointSlice, error) {
		return slices.Create(ctx, idleSlice(ns, name, i), metav1.CreateOptions{})
	},
		func() (*discoveryv1.EndpointSlice, error) { return slices.Get(ctx, name, metav1.GetOptions{}) })
	if err != nil {
		return nil, fmt.Errorf("idle endpointslice %s/%s: %w", ns, name, err)
	}
	return svc, nil
}

func idleService(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(NetserverHTTPPort), Protocol: corev1.ProtocolTCP},
		}},
	}
}

func idleSlice(ns, name string, i int) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "proxyproof-suite",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](NetserverHTTPPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{IdleEndpoint(i)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		}},
	}
}
