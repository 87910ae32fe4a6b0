package state

import (
	"cmp"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// OnServiceAdd records a new Service.
func (t *Tracker) OnServiceAdd(svc *v1.Service) { t.setService(svc) }

// OnServiceUpdate records a changed Service; a resync with the same
// resourceVersion is counted but changes nothing.
func (t *Tracker) OnServiceUpdate(_, svc *v1.Service) { t.setService(svc) }

// OnServiceDelete forgets a Service.
func (t *Tracker) OnServiceDelete(svc *v1.Service) {
	if svc == nil {
		return
	}
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.in.serviceEvents++
	if _, ok := t.in.services[key]; !ok {
		return
	}
	delete(t.in.services, key)
	t.markDirtyLocked(key)
}

func (t *Tracker) setService(svc *v1.Service) {
	if svc == nil {
		return
	}
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.in.serviceEvents++
	if cur := t.in.services[key]; cur != nil && sameVersion(&cur.ObjectMeta, &svc.ObjectMeta, cur == svc) {
		return
	}
	t.in.services[key] = svc
	t.markDirtyLocked(key)
}

// OnEndpointSliceAdd records a new EndpointSlice. Slices of the other
// address family, FQDN slices and slices without the
// kubernetes.io/service-name label are ignored.
func (t *Tracker) OnEndpointSliceAdd(es *discoveryv1.EndpointSlice) { t.setSlice(es) }

// OnEndpointSliceUpdate records a changed EndpointSlice, also when it moved
// to another Service.
func (t *Tracker) OnEndpointSliceUpdate(_, es *discoveryv1.EndpointSlice) { t.setSlice(es) }

// OnEndpointSliceDelete forgets an EndpointSlice.
func (t *Tracker) OnEndpointSliceDelete(es *discoveryv1.EndpointSlice) {
	if es == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.in.endpointEvents++
	t.dropSliceLocked(types.NamespacedName{Namespace: es.Namespace, Name: es.Name})
}

func (t *Tracker) setSlice(es *discoveryv1.EndpointSlice) {
	if es == nil {
		return
	}
	sliceKey := types.NamespacedName{Namespace: es.Namespace, Name: es.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.in.endpointEvents++
	owner, ok := sliceService(es)
	if !ok || es.AddressType != t.addrType {
		t.dropSliceLocked(sliceKey)
		return
	}
	if prev, had := t.in.sliceOwner[sliceKey]; had && prev != owner {
		t.dropSliceLocked(sliceKey)
	}
	list := t.in.slices[owner]
	i, found := slices.BinarySearchFunc(list, es.Name, byName)
	if found && sameVersion(&list[i].ObjectMeta, &es.ObjectMeta, list[i] == es) {
		return
	}
	// A copy: the previous list may be checked out for rendering.
	if found {
		list = slices.Clone(list)
		list[i] = es
	} else {
		list = slices.Insert(slices.Clip(list), i, es)
	}
	t.in.slices[owner] = list
	t.in.sliceOwner[sliceKey] = owner
	if at, ok := triggerTime(es); ok && at.After(t.start) {
		t.in.triggers[owner] = append(t.in.triggers[owner], at)
	}
	t.markDirtyLocked(owner)
}

func (t *Tracker) dropSliceLocked(sliceKey types.NamespacedName) {
	owner, had := t.in.sliceOwner[sliceKey]
	if !had {
		return
	}
	delete(t.in.sliceOwner, sliceKey)
	list := t.in.slices[owner]
	if i, found := slices.BinarySearchFunc(list, sliceKey.Name, byName); found {
		if len(list) == 1 {
			delete(t.in.slices, owner)
		} else {
			t.in.slices[owner] = slices.Delete(slices.Clone(list), i, i+1)
		}
	}
	t.markDirtyLocked(owner)
}

// byName orders a Service's slices, as upstream merges them.
func byName(es *discoveryv1.EndpointSlice, name string) int { return cmp.Compare(es.Name, name) }

func (t *Tracker) markDirtyLocked(key types.NamespacedName) {
	t.in.dirty[key] = struct{}{}
	t.signal()
}

// sameVersion reports an informer resync: the same object or the same
// non-empty resourceVersion.
func sameVersion(a, b *metav1.ObjectMeta, samePointer bool) bool {
	return samePointer || (a.ResourceVersion != "" && a.ResourceVersion == b.ResourceVersion)
}

// OnNodeAdd records this node; other nodes are ignored.
func (t *Tracker) OnNodeAdd(n *v1.Node) { t.setNode(n, false) }

// OnNodeUpdate records a change of this node.
func (t *Tracker) OnNodeUpdate(_, n *v1.Node) { t.setNode(n, false) }

// OnNodeDelete marks this node as going away: the View keeps its last known
// addresses (rules stay) with Deleting set, so that /healthz drains it.
func (t *Tracker) OnNodeDelete(n *v1.Node) { t.setNode(n, true) }

func (t *Tracker) setNode(n *v1.Node, gone bool) {
	if n == nil || n.Name != t.nodeName {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	before := renderNode(t.in.node, t.nodeName, t.family, t.in.nodeGone)
	if !gone || t.in.node == nil {
		t.in.node = n
	}
	t.in.nodeGone = gone
	after := renderNode(t.in.node, t.nodeName, t.family, t.in.nodeGone)
	// Labels other than the zone never need a sync; the next View has them.
	if nodeNeedsFull(before, after) {
		t.signal()
	}
}

// ServiceHandler is the event handler for a Service informer.
func (t *Tracker) ServiceHandler() cache.ResourceEventHandler {
	return handler(t.OnServiceAdd, t.OnServiceUpdate, t.OnServiceDelete)
}

// EndpointSliceHandler is the event handler for a discovery/v1
// EndpointSlice informer.
func (t *Tracker) EndpointSliceHandler() cache.ResourceEventHandler {
	return handler(t.OnEndpointSliceAdd, t.OnEndpointSliceUpdate, t.OnEndpointSliceDelete)
}

// NodeHandler is the event handler for a Node informer (ideally one
// restricted to this node by a field selector).
func (t *Tracker) NodeHandler() cache.ResourceEventHandler {
	return handler(t.OnNodeAdd, t.OnNodeUpdate, t.OnNodeDelete)
}

// handler adapts typed callbacks to an informer, unwrapping the tombstones
// a watch that missed a delete leaves behind.
func handler[T any](add func(T), update func(T, T), del func(T)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := as[T](obj); ok {
				add(o)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := as[T](oldObj)
			n, ok2 := as[T](newObj)
			if ok1 && ok2 {
				update(o, n)
			}
		},
		DeleteFunc: func(obj any) {
			switch d := obj.(type) {
			case cache.DeletedFinalStateUnknown:
				obj = d.Obj
			case *cache.DeletedFinalStateUnknown:
				obj = d.Obj
			}
			if o, ok := as[T](obj); ok {
				del(o)
			}
		},
	}
}

func as[T any](obj any) (T, bool) {
	o, ok := obj.(T)
	if !ok {
		klog.ErrorS(nil, "Unexpected object in informer event", "type", fmt.Sprintf("%T", obj), "want", fmt.Sprintf("%T", o))
	}
	return o, ok
}
