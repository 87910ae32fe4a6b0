package agent

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// podManager hands each pod bound to the node to its worker.
type podManager struct {
	a       *Agent
	mu      sync.Mutex
	workers map[types.UID]*worker
	done    map[types.UID]bool // pods whose worker finished: late events are ignored
	wg      sync.WaitGroup
}

func newPodManager(a *Agent) *podManager {
	return &podManager{a: a, workers: map[types.UID]*worker{}, done: map[types.UID]bool{}}
}

// wait returns once every worker has stopped (after ctx ended).
func (m *podManager) wait() { m.wg.Wait() }

func (m *podManager) handler(ctx context.Context) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.changed(ctx, obj) },
		UpdateFunc: func(_, obj any) { m.changed(ctx, obj) },
		DeleteFunc: func(obj any) { m.deleted(obj) },
	}
}

func (m *podManager) changed(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[pod.UID]; w != nil {
		w.update(pod)
		return
	}
	if m.done[pod.UID] {
		return
	}
	// A pod that already ended (before an agent restart) is not run again;
	// it only needs its final delete once it is deleted.
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if terminal && pod.DeletionTimestamp == nil {
		return
	}
	w := newWorker(m.a, pod)
	m.workers[pod.UID] = w
	m.wg.Add(1)
	klog.InfoS("Pod bound to this node", "pod", klog.KObj(pod), "uid", pod.UID)
	go func() {
		defer m.wg.Done()
		w.run(ctx)
		m.mu.Lock()
		delete(m.workers, pod.UID)
		m.done[pod.UID] = true
		m.mu.Unlock()
	}()
}

func (m *podManager) deleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[pod.UID]; w != nil {
		w.markGone()
	}
}
