package framework

import (
	"context"
	"fmt"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// EndpointEvent is a pod's endpoint becoming ready or ceasing to be
// (not ready, terminating or gone) in a Service's EndpointSlices, at the
// moment the watch delivered the change.
type EndpointEvent struct {
	At    time.Time
	Pod   string
	IP    string
	Ready bool
}

// Timeline is the endpoint history of one Service from a watch.
type Timeline struct {
	mu     sync.Mutex
	slices map[string]map[string]string // slice -> pod -> IP, ready ones
	ready  map[string]string            // pod -> IP, ready in any slice
	events []EndpointEvent
}

// WatchEndpoints records the ready endpoints of Service ns/svc until ctx
// ends. Pods ready when it starts get an event at the start. An informer,
// not a bare watch: under load the API server's watch cache answers a
// fresh watch "too large resource version", which its reflector retries.
func (f *Framework) WatchEndpoints(ctx context.Context, ns, svc string) (*Timeline, error) {
	t := &Timeline{slices: map[string]map[string]string{}, ready: map[string]string{}}
	factory := informers.NewSharedInformerFactoryWithOptions(f.Client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName + "=" + svc }))
	inf := factory.Discovery().V1().EndpointSlices().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.updateObj(o, false) },
		UpdateFunc: func(_, o any) { t.updateObj(o, false) },
		DeleteFunc: func(o any) { t.updateObj(o, true) },
	})
	if err != nil {
		return nil, fmt.Errorf("watch endpointslices of %s/%s: %w", ns, svc, err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("watch endpointslices of %s/%s: not synced: %w", ns, svc, context.Cause(ctx))
	}
	return t, nil
}

func (t *Timeline) updateObj(o any, deleted bool) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if s, ok := o.(*discoveryv1.EndpointSlice); ok {
		t.update(s, deleted)
	}
}

func (t *Timeline) update(s *discoveryv1.EndpointSlice, deleted bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	pods := map[string]string{}
	if !deleted {
		for _, e := range s.Endpoints {
			if e.TargetRef != nil && len(e.Addresses) > 0 && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				pods[e.TargetRef.Name] = e.Addresses[0]
			}
		}
	}
	t.slices[s.Name] = pods
	ready := map[string]string{}
	for _, ps := range t.slices {
		for p, ip := range ps {
			ready[p] = ip
		}
	}
	for p, ip := range ready {
		if _, was := t.ready[p]; !was {
			t.events = append(t.events, EndpointEvent{At: now, Pod: p, IP: ip, Ready: true})
		}
	}
	for p, ip := range t.ready {
		if _, is := ready[p]; !is {
			t.events = append(t.events, EndpointEvent{At: now, Pod: p, IP: ip, Ready: false})
		}
	}
	t.ready = ready
}

// Events are the changes so far, in order.
func (t *Timeline) Events() []EndpointEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]EndpointEvent(nil), t.events...)
}

// ReadyDuring reports whether pod was a ready endpoint at any moment of
// [from, to].
func (t *Timeline) ReadyDuring(pod string, from, to time.Time) bool {
	ready := false
	for _, e := range t.Events() {
		switch {
		case e.Pod != pod:
		case !e.At.After(from):
			ready = e.Ready // its state at from
		case ready || e.At.After(to):
			return ready
		case e.Ready:
			return true
		}
	}
	return ready
}

// ReadyCount is the number of ready endpoints just after each event, as
// (seconds since origin, count) pairs.
func (t *Timeline) ReadyCount(origin time.Time) [][2]float64 {
	n := 0
	var out [][2]float64
	for _, e := range t.Events() {
		if e.Ready {
			n++
		} else {
			n--
		}
		out = append(out, [2]float64{e.At.Sub(origin).Seconds(), float64(n)})
	}
	return out
}
