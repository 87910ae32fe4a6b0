package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/proxyproof/proxyproof/proxier/modes"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// Options is what the daemon needs; app builds it from the configuration.
type Options struct {
	NodeName      string
	Family        v1.IPFamily
	Mode          modes.Mode
	MinSyncPeriod time.Duration
	SyncPeriod    time.Duration
	// SyncBudgetPercent shortens the wait after a cheap sync (see loop);
	// 0 waits MinSyncPeriod after every sync, as kube-proxy does.
	SyncBudgetPercent int

	// Hooks run after every successful sync with the view just programmed:
	// health check servers, conntrack cleanup. Each is independent; one
	// failing is logged and never fails the sync of the rules.
	Hooks []Hook
	// Observer hears about queued and finished syncs (health, metrics).
	Observer Observer
	// Events records problems with API objects; nil logs them only.
	Events EventSink
	Clock  clock.Clock
}

// Hook runs after a successful sync.
type Hook interface {
	Name() string
	AfterSync(ctx context.Context, view *state.View, changes *state.Changes) error
}

// Observer is told about the life of syncs.
type Observer interface {
	Queued(at time.Time)
	Synced(result SyncResult)
	// Unchanged is a sync that found nothing to do: the rules are current.
	Unchanged(at time.Time)
	SyncFailed(mode string, full bool)
}

// SyncResult describes one successful sync.
type SyncResult struct {
	Mode     string
	Full     bool
	Start    time.Time
	Duration time.Duration
	Changes  *state.Changes
	Rules    map[string]int
	View     *state.View
}

// EventSink reports a problem with an API object to its owner.
type EventSink interface {
	Problem(p state.Problem)
}

// Daemon is one proxier.
type Daemon struct {
	opts     Options
	client   kubernetes.Interface
	tracker  *state.Tracker
	problems map[state.Problem]bool // reported already; reported again only when it comes back
	// wrapHandler, when set (tests), stands between each informer and
	// the tracker: a slow handler shows whether the first sync waits for
	// the events still queued.
	wrapHandler func(cache.ResourceEventHandler) cache.ResourceEventHandler
}

// New prepares a daemon; Run starts it.
func New(client kubernetes.Interface, opts Options) (*Daemon, error) {
	if opts.NodeName == "" {
		return nil, fmt.Errorf("daemon: no node name (set hostnameOverride or --hostname-override)")
	}
	if opts.Mode == nil {
		return nil, fmt.Errorf("daemon: no proxy mode")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Family == "" {
		opts.Family = v1.IPv4Protocol
	}
	return &Daemon{
		opts:     opts,
		client:   client,
		tracker:  state.NewTracker(opts.NodeName, opts.Family),
		problems: map[state.Problem]bool{},
	}, nil
}

// Run watches the API and keeps the kernel in line until ctx ends. It returns
// an error only when it cannot start (informers never sync).
func (d *Daemon) Run(ctx context.Context) error {
	// Like kube-proxy: Services and slices that another proxy owns
	// (service.kubernetes.io/service-proxy-name) or that are headless are
	// not even watched.
	noProxyName, _ := labels.NewRequirement("service.kubernetes.io/service-proxy-name", selection.DoesNotExist, nil)
	noHeadless, _ := labels.NewRequirement(v1.IsHeadlessService, selection.DoesNotExist, nil)
	selector := labels.NewSelector().Add(*noProxyName, *noHeadless).String()
	factory := informers.NewSharedInformerFactoryWithOptions(d.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }),
		informers.WithTransform(stripUnused))
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(d.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", d.opts.NodeName).String()
		}))

	svcInformer := factory.Core().V1().Services().Informer()
	sliceInformer := factory.Discovery().V1().EndpointSlices().Informer()
	nodeInformer := nodeFactory.Core().V1().Nodes().Informer()
	// The tracker has the initial list once each handler has been given
	// it, which is later than the informer's own HasSynced (its store
	// filled): events reach handlers asynchronously. Waiting on the
	// informers let the first sync program a view without the
	// EndpointSlices still queued: in the kernel VM, 11 s lists, the first
	// nftables sync after a restart wrote Services as having no endpoints
	// and rejected their new connections until the next sync (as upstream
	// does, the registrations' HasSynced is what counts).
	var synced []cache.InformerSynced
	for _, reg := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{svcInformer, d.tracker.ServiceHandler()},
		{sliceInformer, d.tracker.EndpointSliceHandler()},
		{nodeInformer, d.tracker.NodeHandler()},
	} {
		h := reg.h
		if d.wrapHandler != nil {
			h = d.wrapHandler(h)
		}
		r, err := reg.inf.AddEventHandler(h)
		if err != nil {
			return fmt.Errorf("daemon: add event handler: %w", err)
		}
		synced = append(synced, r.HasSynced)
	}
	factory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	klog.InfoS("Waiting for caches to sync", "node", d.opts.NodeName, "mode", d.opts.Mode.Name())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("daemon: informers did not sync: %w", ctx.Err())
	}
	d.tracker.SetSynced(true, true, true)

	trigger := make(chan struct{}, 1)
	go d.forwardChanges(ctx, trigger)
	l := newLoop(d.opts.MinSyncPeriod, d.opts.SyncPeriod, d.opts.Clock)
	l.budgetPercent = d.opts.SyncBudgetPercent
	l.cpu = syncCPU
	l.run(ctx, trigger, d.sync)
	return nil
}

// stripUnused drops what no proxier reads from an object before the
// informer caches it: managedFields (about a tenth of the proxier's heap at
// 10,000 Services), kubectl's last-applied copy of the whole object, owner
// references, the UID and, per endpoint, the pod reference, hostname and
// deprecated topology the EndpointSlice controller writes for every
// endpoint. Objects are mutated in place, which client-go allows since
// v1.27.
func stripUnused(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
		a.SetOwnerReferences(nil)
		// Problems are evented by namespace and name; no proxier reads a UID.
		a.SetUID("")
		if ann := a.GetAnnotations(); ann != nil {
			delete(ann, v1.LastAppliedConfigAnnotation)
		}
	}
	if es, ok := obj.(*discoveryv1.EndpointSlice); ok {
		for i := range es.Endpoints {
			e := &es.Endpoints[i]
			e.TargetRef, e.Hostname, e.DeprecatedTopology = nil, nil, nil
		}
		// Decoding appends endpoint by endpoint, leaving up to twice the
		// room needed (10 endpoints in an array for 16, 7 MB at 10,000 x
		// 10); the informer keeps the object, so it is worth one copy.
		if cap(es.Endpoints) > len(es.Endpoints) {
			es.Endpoints = slices.Clone(es.Endpoints)
		}
	}
	return obj, nil
}

// forwardChanges passes tracker notifications to the loop, noting the time a
// change was queued (for health: a queued change not synced in time makes
// the proxier unhealthy).
func (d *Daemon) forwardChanges(ctx context.Context, trigger chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.tracker.Changed():
			if d.opts.Observer != nil {
				d.opts.Observer.Queued(d.opts.Clock.Now())
			}
			select {
			case trigger <- struct{}{}:
			default:
			}
		}
	}
}

// sync programs one snapshot and reports whether there was anything to
// program. A failed sync asks for a full one next time, because what the
// kernel holds is then unknown.
func (d *Daemon) sync(ctx context.Context, full bool) (bool, error) {
	if full {
		d.tracker.RequestFull()
	}
	view, changes := d.tracker.Snapshot()
	start := d.opts.Clock.Now()
	if changes.Empty() {
		// RequestFull and informer resyncs can wake the loop with nothing
		// new; the kernel is current, so only health hears about it.
		if d.opts.Observer != nil {
			d.opts.Observer.Unchanged(start)
		}
		return false, nil
	}
	res, err := d.opts.Mode.Sync(ctx, view, changes)
	if err != nil {
		d.tracker.RequestFull()
		if d.opts.Observer != nil {
			d.opts.Observer.SyncFailed(d.opts.Mode.Name(), changes.Full)
		}
		klog.ErrorS(err, "Sync failed; the next sync will be full", "mode", d.opts.Mode.Name(), "full", changes.Full)
		return true, err
	}
	elapsed := d.opts.Clock.Since(start)
	klog.V(2).InfoS("Synced", "mode", d.opts.Mode.Name(), "full", res.Full, "services", len(view.Services),
		"changed", len(changes.Services), "elapsed", elapsed)
	if d.opts.Observer != nil {
		d.opts.Observer.Synced(SyncResult{Mode: d.opts.Mode.Name(), Full: res.Full, Start: start,
			Duration: elapsed, Changes: changes, Rules: res.Rules, View: view})
	}
	for _, h := range d.opts.Hooks {
		if err := h.AfterSync(ctx, view, changes); err != nil {
			klog.ErrorS(err, "After-sync step failed", "step", h.Name())
		}
	}
	d.report(view.Problems)
	return true, nil
}

// report logs and events each problem once while it lasts.
func (d *Daemon) report(problems []state.Problem) {
	current := make(map[state.Problem]bool, len(problems))
	for _, p := range problems {
		current[p] = true
		if d.problems[p] {
			continue
		}
		klog.InfoS("Skipping an API object that cannot be programmed", "kind", p.Kind, "object", p.Object, "reason", p.Reason)
		if d.opts.Events != nil {
			d.opts.Events.Problem(p)
		}
	}
	d.problems = current
}
