package state

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Tracker folds informer events into the desired View. Event handlers run on
// informer goroutines and only store objects and mark Services dirty; the
// sync loop's Snapshot does the rendering, for the dirty Services only, and
// shares every unchanged *ServicePort with the previous View.
//
// Objects handed to the tracker must not be modified afterwards (informer
// objects never are): the tracker recognises unchanged objects by pointer.
type Tracker struct {
	nodeName string
	family   v1.IPFamily
	addrType discoveryv1.AddressType
	// start filters out trigger times older than this process, as upstream
	// does, so that a restart does not report hours of "programming latency".
	start   time.Time
	changed chan struct{}

	// mu guards in, the input side fed by the handlers.
	mu sync.Mutex
	in inputs

	// snapMu serialises Snapshot and guards the output side below.
	snapMu   sync.Mutex
	view     *View
	rendered map[types.NamespacedName]*rendered
	// problems holds the non-empty problem lists by Service.
	problems map[types.NamespacedName][]Problem
}

type inputs struct {
	services map[types.NamespacedName]*v1.Service
	// slices by owning Service, sorted by name: usually one, for which a
	// map would cost ten times the room. A list is replaced, never changed
	// in place, so that a checked-out list needs no copy.
	slices     map[types.NamespacedName][]*discoveryv1.EndpointSlice
	sliceOwner map[types.NamespacedName]types.NamespacedName
	node       *v1.Node
	nodeGone   bool

	dirty    map[types.NamespacedName]struct{}
	triggers map[types.NamespacedName][]time.Time
	full     bool

	serviceEvents, endpointEvents int

	servicesSynced, slicesSynced, nodeSynced bool
	warnedUnsynced                           bool
}

// rendered is the output for one Service and what its next render reuses:
// while the Service object is the same, its ports are the templates (their
// endpoint fields are recomputed) and its problems are kept. Slices are
// parsed again on each render, which costs less than keeping every endpoint
// a second time: the informer holds them already.
type rendered struct {
	svc   *v1.Service
	ports []*ServicePort // in the Service's port order
	// problems are the Service's own (the first svcProblems), then its
	// slices'.
	problems    []Problem
	svcProblems int
}

// NewTracker returns a tracker for the node nodeName and one IP family.
func NewTracker(nodeName string, family v1.IPFamily) *Tracker {
	if family == "" {
		family = v1.IPv4Protocol
	}
	return &Tracker{
		nodeName: nodeName,
		family:   family,
		addrType: addressTypeOf(family),
		start:    time.Now(),
		changed:  make(chan struct{}, 1),
		in: inputs{
			services:   map[types.NamespacedName]*v1.Service{},
			slices:     map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
			sliceOwner: map[types.NamespacedName]types.NamespacedName{},
			dirty:      map[types.NamespacedName]struct{}{},
			triggers:   map[types.NamespacedName][]time.Time{},
			full:       true,
		},
		rendered: map[types.NamespacedName]*rendered{},
		problems: map[types.NamespacedName][]Problem{},
	}
}

// Changed delivers one notification when something changed since the last
// Snapshot. It holds at most one pending notification.
func (t *Tracker) Changed() <-chan struct{} { return t.changed }

// RequestFull makes the next Snapshot Full (periodic resync, a failed sync,
// rules found altered) and notifies Changed.
func (t *Tracker) RequestFull() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.in.full = true
	t.signal()
}

// SetSynced records which informers have delivered their initial list.
// Until all three have, every Snapshot is Full and keeps the next one Full,
// so that a view programmed from a partial cache is rewritten once complete.
func (t *Tracker) SetSynced(services, slices, node bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.syncedLocked()
	t.in.servicesSynced = t.in.servicesSynced || services
	t.in.slicesSynced = t.in.slicesSynced || slices
	t.in.nodeSynced = t.in.nodeSynced || node
	if !was && t.syncedLocked() {
		t.signal()
	}
}

// HasSynced reports whether SetSynced has seen all three informers synced.
func (t *Tracker) HasSynced() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.syncedLocked()
}

func (t *Tracker) syncedLocked() bool {
	return t.in.servicesSynced && t.in.slicesSynced && t.in.nodeSynced
}

// signal notifies Changed without blocking. Callers hold mu, so that
// Snapshot's drain (also under mu) never swallows a later change.
func (t *Tracker) signal() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Snapshot returns the current desired View and what changed since the
// previous Snapshot. The View is immutable and shares unchanged ServicePorts
// with earlier Views. Snapshot is meant for one goroutine (the sync loop);
// concurrent calls are serialised.
func (t *Tracker) Snapshot() (*View, *Changes) {
	t.snapMu.Lock()
	defer t.snapMu.Unlock()

	co := t.checkout()
	changes := &Changes{
		Full:           co.full,
		Services:       map[ServicePortName]struct{}{},
		ServiceEvents:  co.serviceEvents,
		EndpointEvents: co.endpointEvents,
	}
	b := &servicesWriter{changes: changes}
	if t.view == nil {
		changes.Full = true
		// One port per Service is the common case; a map sized for two
		// (1.2 MB more at 10,000) kept that room in every later clone.
		b.services, b.cloned = make(map[ServicePortName]*ServicePort, len(co.work)), true
	} else {
		b.services = t.view.Services
		if nodeNeedsFull(t.view.Node, co.node) {
			changes.Full = true
		}
	}
	problemsChanged := false
	for _, w := range co.work {
		old := t.rendered[w.key]
		r := t.render(w, old, co.node.Zone)
		if b.apply(old, r) {
			changes.TriggerTimes = append(changes.TriggerTimes, co.triggers[w.key]...)
		}
		var oldProblems, newProblems []Problem
		if old != nil {
			oldProblems = old.problems
		}
		if r != nil {
			newProblems = r.problems
		}
		if !sameProblems(oldProblems, newProblems) {
			problemsChanged = true
			if len(newProblems) == 0 {
				delete(t.problems, w.key)
			} else {
				t.problems[w.key] = newProblems
			}
		}
		if r == nil {
			delete(t.rendered, w.key)
		} else {
			t.rendered[w.key] = r
		}
	}
	slices.SortFunc(changes.TriggerTimes, time.Time.Compare)

	view := &View{Family: t.family, Node: co.node, Services: b.services}
	if t.view != nil && !problemsChanged {
		view.Problems = t.view.Problems
	} else {
		view.Problems = t.flattenProblems()
	}
	t.view = view
	return view, changes
}

// servicesWriter applies rendered Services to the next View's map, copying
// the previous View's map on the first write only (views are immutable).
type servicesWriter struct {
	services map[ServicePortName]*ServicePort
	cloned   bool
	changes  *Changes
}

// apply replaces old's ports by r's (either may be nil) where they differ,
// keeping the old pointer where they do not. It reports whether any did.
func (b *servicesWriter) apply(old, r *rendered) bool {
	var oldPorts, newPorts []*ServicePort
	if old != nil {
		oldPorts = old.ports
	}
	if r != nil {
		newPorts = r.ports
	}
	changed := false
	for i, sp := range newPorts {
		if o := findPort(oldPorts, sp.Name); o != nil && samePort(o, sp) {
			newPorts[i] = o
			continue
		}
		b.write(sp.Name, sp)
		changed = true
	}
	for _, o := range oldPorts {
		if findPort(newPorts, o.Name) == nil {
			b.write(o.Name, nil)
			changed = true
		}
	}
	return changed
}

// write sets (or, for nil, deletes) one ServicePort and records the change.
func (b *servicesWriter) write(name ServicePortName, sp *ServicePort) {
	if !b.cloned {
		b.services = maps.Clone(b.services)
		b.cloned = true
	}
	if sp == nil {
		delete(b.services, name)
	} else {
		b.services[name] = sp
	}
	b.changes.Services[name] = struct{}{}
}

// checkout takes the pending changes under mu and lists the Services to
// render, with the objects to render them from.
func (t *Tracker) checkout() checkedOut {
	t.mu.Lock()
	defer t.mu.Unlock()
	co := checkedOut{
		node:           renderNode(t.in.node, t.nodeName, t.family, t.in.nodeGone),
		full:           t.in.full,
		triggers:       t.in.triggers,
		serviceEvents:  t.in.serviceEvents,
		endpointEvents: t.in.endpointEvents,
	}
	if t.syncedLocked() {
		t.in.full = false
	} else if !t.in.warnedUnsynced {
		t.in.warnedUnsynced = true
		klog.InfoS("Snapshot taken before SetSynced reported every informer synced; snapshots stay full until it does", "node", t.nodeName)
	}

	// The zone decides topology for every Service: render them all again.
	keys := t.in.dirty
	if t.view == nil || co.node.Zone != t.view.Node.Zone {
		keys = maps.Clone(t.in.dirty)
		for k := range t.in.services {
			keys[k] = struct{}{}
		}
		for k := range t.rendered {
			keys[k] = struct{}{}
		}
	}
	co.work = make([]workItem, 0, len(keys))
	for k := range keys {
		co.work = append(co.work, workItem{key: k, svc: t.in.services[k], slices: t.in.slices[k]})
	}

	t.in.dirty = map[types.NamespacedName]struct{}{}
	t.in.triggers = map[types.NamespacedName][]time.Time{}
	t.in.serviceEvents, t.in.endpointEvents = 0, 0
	// Everything pending is now taken: drop a pending notification.
	select {
	case <-t.changed:
	default:
	}
	return co
}

type checkedOut struct {
	work                          []workItem
	node                          Node
	full                          bool
	triggers                      map[types.NamespacedName][]time.Time
	serviceEvents, endpointEvents int
}

type workItem struct {
	key    types.NamespacedName
	svc    *v1.Service                  // nil: deleted (or never seen)
	slices []*discoveryv1.EndpointSlice // by name; shared with inputs, read only
}

// render computes one Service's ports, reusing old's when the Service
// object did not change.
func (t *Tracker) render(w workItem, old *rendered, zone string) *rendered {
	if w.svc == nil {
		return nil
	}
	r := &rendered{svc: w.svc}
	templates, shared := []*ServicePort(nil), false
	if old != nil && old.svc == w.svc {
		// old's ports are in Views already: copied, never changed.
		templates, shared = old.ports, true
		r.problems = append(r.problems, old.problems[:old.svcProblems]...)
	} else {
		ps := parseService(w.svc, t.family)
		templates = ps.ports
		r.problems = ps.problems
	}
	r.svcProblems = len(r.problems)
	if len(templates) == 0 {
		// Not proxied here (headless, ExternalName, other family) or broken:
		// its slices do not matter.
		return r
	}
	parsed := make([]*parsedSlice, 0, len(w.slices))
	for _, es := range w.slices {
		ps := parseSlice(es, t.family)
		parsed = append(parsed, ps)
		r.problems = append(r.problems, ps.problems...)
	}
	r.ports = make([]*ServicePort, 0, len(templates))
	for _, tmpl := range templates {
		sp := tmpl
		if shared {
			cp := *tmpl
			sp = &cp
		}
		categorize(sp, mergeEndpoints(sp.Name, parsed, t.nodeName), t.nodeName, zone)
		r.ports = append(r.ports, sp)
	}
	return r
}

func findPort(ports []*ServicePort, name ServicePortName) *ServicePort {
	for _, p := range ports {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// flattenProblems lists every problem, ordered by object so that the list
// is stable between snapshots.
func (t *Tracker) flattenProblems() []Problem {
	if len(t.problems) == 0 {
		return nil
	}
	var out []Problem
	for _, ps := range t.problems {
		out = append(out, ps...)
	}
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Object.Namespace, b.Object.Namespace),
			cmp.Compare(a.Object.Name, b.Object.Name), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}
