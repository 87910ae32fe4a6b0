package framework

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Poll calls check every interval until it reports done or timeout passes.
// check returns what it saw; a timeout error says what was waited for and
// what was last seen, because "timed out" alone debugs nothing.
func Poll(ctx context.Context, what string, timeout, interval time.Duration, check func(context.Context) (done bool, seen string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	seen := "nothing yet"
	for {
		done, s := check(ctx)
		if s != "" {
			seen = s
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %s; last seen: %s", what, time.Since(began).Round(100*time.Millisecond), seen)
		case <-time.After(interval):
		}
	}
}

// WaitPodsReady waits for exactly n Running, Ready, not terminating pods
// matching selector in ns and returns them.
func (f *Framework) WaitPodsReady(ctx context.Context, ns, selector string, n int, timeout time.Duration) ([]corev1.Pod, error) {
	var ready []corev1.Pod
	err := Poll(ctx, fmt.Sprintf("%d ready pods %s in %s", n, selector, ns), timeout, 250*time.Millisecond, func(ctx context.Context) (bool, string) {
		list, err := f.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		ready = ready[:0]
		var states []string
		for _, p := range list.Items {
			states = append(states, fmt.Sprintf("%s on %q %s ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, PodReady(&p)))
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && PodReady(&p) {
				ready = append(ready, p)
			}
		}
		return len(ready) == n && len(list.Items) == n, fmt.Sprintf("%d pods: %s", len(list.Items), strings.Join(states, "; "))
	})
	sort.Slice(ready, func(i, j int) bool { return ready[i].Spec.NodeName < ready[j].Spec.NodeName })
	return ready, err
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ReadyEndpoints lists the ready endpoint addresses of Service ns/svc from
// its EndpointSlices, sorted.
func (f *Framework) ReadyEndpoints(ctx context.Context, ns, svc string) ([]string, error) {
	list, err := f.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, fmt.Errorf("endpointslices of %s/%s: %w", ns, svc, err)
	}
	var addrs []string
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				addrs = append(addrs, e.Addresses...)
			}
		}
	}
	sort.Strings(addrs)
	return addrs, nil
}

// WaitEndpoints waits until Service ns/svc has exactly n ready endpoints.
func (f *Framework) WaitEndpoints(ctx context.Context, ns, svc string, n int, timeout time.Duration) ([]string, error) {
	var addrs []string
	err := Poll(ctx, fmt.Sprintf("service %s/%s with %d ready endpoints", ns, svc, n), timeout, 250*time.Millisecond, func(ctx context.Context) (bool, string) {
		var err error
		addrs, err = f.ReadyEndpoints(ctx, ns, svc)
		if err != nil {
			return false, err.Error()
		}
		return len(addrs) == n, fmt.Sprintf("endpoints %v", addrs)
	})
	return addrs, err
}
