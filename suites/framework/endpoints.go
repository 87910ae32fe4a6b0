package framework

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// WriteEndpointSlice sets the one hand-written EndpointSlice of the
// selector-less netserver Service ns/svc to pods (ports http and udp),
// creating it when create is set. It returns when the API server accepted
// the write: the start of a propagation measurement.
func (f *Framework) WriteEndpointSlice(ctx context.Context, ns, svc string, pods []corev1.Pod, create bool) (time.Time, error) {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      svc + "-manual",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc,
				discoveryv1.LabelManagedBy:   "proxyproof-suite",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("http"), Port: ptr.To[int32](NetserverHTTPPort), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To("udp"), Port: ptr.To[int32](NetserverUDPPort), Protocol: ptr.To(corev1.ProtocolUDP)},
		},
	}
	for _, p := range pods {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(p.Spec.NodeName),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		})
	}
	api := f.Client.DiscoveryV1().EndpointSlices(ns)
	var err error
	if create {
		_, err = api.Create(ctx, slice, metav1.CreateOptions{})
	} else {
		var cur *discoveryv1.EndpointSlice
		if cur, err = api.Get(ctx, slice.Name, metav1.GetOptions{}); err == nil {
			cur.Endpoints = slice.Endpoints
			_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("endpointslice %s/%s (%d endpoints): %w", ns, slice.Name, len(pods), err)
	}
	return time.Now(), nil
}

// FirstProbe probes back to back until a probe satisfies sees and returns
// when that probe finished. what names the change awaited, for the error.
func (f *Framework) FirstProbe(ctx context.Context, src Source, kind, target, service, what string, sees func(Result) bool, timeout time.Duration) (time.Time, error) {
	return f.FirstOfRun(ctx, src, kind, target, service, what, sees, 1, timeout)
}

// FirstOfRun probes back to back until n probes in a row satisfy sees and
// returns when the first of them finished: for a change that shows as
// the absence of something (a removed backend), one lucky probe is not
// evidence.
func (f *Framework) FirstOfRun(ctx context.Context, src Source, kind, target, service, what string, sees func(Result) bool, n int, timeout time.Duration) (time.Time, error) {
	var first time.Time
	run := 0
	var last Result
	err := Poll(ctx, fmt.Sprintf("%s -> %s %s (%s) to see %s (%d probes in a row)", src.Description, kind, target, service, what, n), timeout, 0, func(ctx context.Context) (bool, string) {
		last = f.Probe(ctx, src, kind, target, probeTimeout)
		if !sees(last) {
			run = 0
			return false, last.String()
		}
		if run == 0 {
			first = time.Now()
		}
		run++
		return run >= n, last.String()
	})
	if err != nil {
		f.RecordProbe(src, kind, target, service, what, last.String(), true)
	}
	return first, err
}

// probeTimeout bounds one probe of a measurement loop.
const probeTimeout = 2 * time.Second
