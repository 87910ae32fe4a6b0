// The rollout test's record: every EndpointSlice version and pod deletion
// seen through watches, and the check of how slices showed each deleted pod.

package local

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// endpointState is what one EndpointSlice says of one pod's endpoint.
type endpointState struct {
	uid                         types.UID
	name                        string
	ready, serving, terminating bool
}

func endpointStateOf(e discoveryv1.Endpoint) endpointState {
	s := endpointState{}
	if r := e.TargetRef; r != nil {
		s.uid, s.name = r.UID, r.Name
	}
	// Unset conditions mean what the API documents: ready unknown is
	// ready, serving follows ready, terminating unknown is not.
	s.ready = e.Conditions.Ready == nil || *e.Conditions.Ready
	s.serving = s.ready
	if e.Conditions.Serving != nil {
		s.serving = *e.Conditions.Serving
	}
	s.terminating = e.Conditions.Terminating != nil && *e.Conditions.Terminating
	return s
}

// Phases of an endpoint through a pod's termination, as slices show it.
const (
	phaseReady                 = "ready"
	phaseTerminatingServing    = "terminating+serving"
	phaseTerminatingNotServing = "terminating+not-serving"
	phaseAbsent                = "absent"
)

func (s endpointState) phase() string {
	switch {
	case s.ready && s.serving && !s.terminating:
		return phaseReady
	case !s.ready && s.serving && s.terminating:
		return phaseTerminatingServing
	case !s.ready && !s.serving && s.terminating:
		return phaseTerminatingNotServing
	}
	return fmt.Sprintf("ready=%v,serving=%v,terminating=%v", s.ready, s.serving, s.terminating)
}

// sliceVersion is one EndpointSlice as one watch event left it.
type sliceVersion struct {
	at        time.Duration // since the recorder started
	rv        uint64
	slice     string
	deleted   bool
	endpoints []endpointState
}

// checkTerminations checks every slice version against the pods' deletions
// (deleting: pod UID -> resourceVersion of the write that set its
// deletionTimestamp). Resource versions order the two kinds of writes: with
// etcd they are its global revision, so a slice written after a pod's
// deletion has the higher one, whichever watch delivered first. It returns
// each deleted pod's phases after its deletion, as its slice's writes show
// them, and what is wrong:
//   - an endpoint ready while terminating or not serving, ever;
//   - a deleted pod not going terminating+serving ->
//     terminating+not-serving -> absent after its deletion, where one
//     slice written from a controller cache that had not yet seen the
//     deletion may still list it ready first (seen under load: the
//     upstream EndpointSlice controller synced the Service for another
//     pod's change, rv 425 after the deletion's 424), but never ready
//     once it was terminating.
func checkTerminations(versions []sliceVersion, deleting map[types.UID]uint64, names map[types.UID]string) (map[types.UID][]string, []string) {
	var problems []string
	current := map[string][]endpointState{}
	seq := map[types.UID][]string{}
	for _, v := range versions {
		touched := map[types.UID]string{}
		for _, e := range current[v.slice] {
			touched[e.uid] = phaseAbsent
		}
		if v.deleted {
			delete(current, v.slice)
		} else {
			current[v.slice] = v.endpoints
		}
		for _, e := range v.endpoints {
			if !v.deleted {
				touched[e.uid] = e.phase()
			}
			if e.ready && (!e.serving || e.terminating) {
				problems = append(problems, fmt.Sprintf("slice %s at +%s (rv %d) lists pod %s ready but %s", v.slice, v.at.Round(time.Millisecond), v.rv, e.name, e.phase()))
			}
		}
		for uid, ph := range touched {
			if rv, ok := deleting[uid]; ok && v.rv > rv {
				if s := seq[uid]; len(s) == 0 || s[len(s)-1] != ph {
					seq[uid] = append(s, ph)
				}
			}
		}
	}
	want := strings.Join([]string{phaseTerminatingServing, phaseTerminatingNotServing, phaseAbsent}, " -> ")
	lagged := phaseReady + " -> " + want
	var uids []types.UID
	for uid := range deleting {
		uids = append(uids, uid)
	}
	sort.Slice(uids, func(i, j int) bool { return names[uids[i]] < names[uids[j]] })
	for _, uid := range uids {
		if got := strings.Join(seq[uid], " -> "); got != want && got != lagged {
			problems = append(problems, fmt.Sprintf("pod %s after its deletion went %q, want %q", names[uid], got, want))
		}
	}
	return seq, problems
}

func describeVersions(versions []sliceVersion, names map[types.UID]string) string {
	var b strings.Builder
	for _, v := range versions {
		fmt.Fprintf(&b, "  +%-7s rv %d slice %s:", v.at.Round(time.Millisecond), v.rv, v.slice)
		if v.deleted {
			b.WriteString(" deleted")
		}
		for _, e := range v.endpoints {
			name := e.name
			if name == "" {
				name = names[e.uid]
			}
			fmt.Fprintf(&b, " %s=%s", name, e.phase())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// rolloutRecorder watches a Service's EndpointSlices and its pods, keeping
// every slice version and each pod's deletion.
type rolloutRecorder struct {
	began  time.Time
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	versions []sliceVersion
	current  map[string][]endpointState // by slice name
	listed   int                        // versions from the initial list
	pods     map[types.UID]*podRecord
	errs     []string
}

type podRecord struct {
	name       string
	deletingRV uint64
	deletingAt time.Duration
	deleting   bool
	gone       bool
}

func startRolloutRecorder(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, service, podSelector string) *rolloutRecorder {
	t.Helper()
	sliceSelector := discoveryv1.LabelServiceName + "=" + service
	slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: sliceSelector})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podSelector})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &rolloutRecorder{began: time.Now(), cancel: cancel, done: make(chan struct{}),
		current: map[string][]endpointState{}, pods: map[types.UID]*podRecord{}}
	for i := range slices.Items {
		r.slice(watch.Added, &slices.Items[i])
	}
	r.listed = len(r.versions)
	for i := range pods.Items {
		r.pod(watch.Added, &pods.Items[i])
	}
	sw, err := watchtools.NewRetryWatcherWithContext(ctx, slices.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sliceSelector
			return client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := watchtools.NewRetryWatcherWithContext(ctx, pods.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = podSelector
			return client.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		defer sw.Stop()
		defer pw.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-sw.ResultChan():
				if !ok {
					r.fail("EndpointSlice watch closed early")
					return
				}
				r.event(ev)
			case ev, ok := <-pw.ResultChan():
				if !ok {
					r.fail("pod watch closed early")
					return
				}
				r.event(ev)
			}
		}
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *rolloutRecorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, msg)
}

func (r *rolloutRecorder) event(ev watch.Event) {
	switch o := ev.Object.(type) {
	case *discoveryv1.EndpointSlice:
		r.slice(ev.Type, o)
	case *corev1.Pod:
		r.pod(ev.Type, o)
	case *metav1.Status:
		r.fail(fmt.Sprintf("watch error: %s", o.Message))
	}
}

func resourceVersion(o metav1.Object) uint64 {
	rv, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	return rv
}

func (r *rolloutRecorder) slice(typ watch.EventType, s *discoveryv1.EndpointSlice) {
	if typ == watch.Bookmark {
		return
	}
	v := sliceVersion{at: time.Since(r.began), rv: resourceVersion(s), slice: s.Name, deleted: typ == watch.Deleted}
	for _, e := range s.Endpoints {
		v.endpoints = append(v.endpoints, endpointStateOf(e))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v.rv == 0 {
		r.errs = append(r.errs, fmt.Sprintf("slice %s: resourceVersion %q is not a number: the deletion order check needs one", s.Name, s.ResourceVersion))
	}
	r.versions = append(r.versions, v)
	if v.deleted {
		delete(r.current, s.Name)
	} else {
		r.current[s.Name] = v.endpoints
	}
}

func (r *rolloutRecorder) pod(typ watch.EventType, p *corev1.Pod) {
	if typ == watch.Bookmark {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.pods[p.UID]
	if rec == nil {
		rec = &podRecord{name: p.Name}
		r.pods[p.UID] = rec
	}
	// A delete with no graceful phase first counts as its deletion too.
	if !rec.deleting && (p.DeletionTimestamp != nil || typ == watch.Deleted) {
		if resourceVersion(p) == 0 {
			r.errs = append(r.errs, fmt.Sprintf("pod %s: resourceVersion %q is not a number: the deletion order check needs one", p.Name, p.ResourceVersion))
		}
		rec.deleting, rec.deletingRV, rec.deletingAt = true, resourceVersion(p), time.Since(r.began)
	}
	if typ == watch.Deleted {
		rec.gone = true
	}
}

// stop ends the watches and hands over what they saw. Later calls return
// the same.
func (r *rolloutRecorder) stop() ([]sliceVersion, map[types.UID]uint64) {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	deleting := map[types.UID]uint64{}
	for uid, p := range r.pods {
		if p.deleting {
			deleting[uid] = p.deletingRV
		}
	}
	return append([]sliceVersion(nil), r.versions...), deleting
}

func (r *rolloutRecorder) names() map[types.UID]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[types.UID]string{}
	for uid, p := range r.pods {
		n[uid] = p.name
	}
	return n
}

// waitFor polls cond, which says what is not yet so, until it says nothing
// or a watch broke.
func (r *rolloutRecorder) waitFor(ctx context.Context, t *testing.T, what string, cond func() []string) {
	t.Helper()
	for {
		why := cond()
		r.mu.Lock()
		errs := append([]string(nil), r.errs...)
		r.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("waiting for %s: %s", what, strings.Join(errs, "; "))
		}
		if len(why) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %s", what, strings.Join(why, "; "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endpointsAre says how the slices differ from listing exactly the pods
// want, each once and ready.
func (r *rolloutRecorder) endpointsAre(want map[types.UID]string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var why []string
	seen := map[types.UID]int{}
	for slice, eps := range r.current {
		for _, e := range eps {
			seen[e.uid]++
			if _, ok := want[e.uid]; !ok {
				why = append(why, fmt.Sprintf("slice %s lists pod %s (%s)", slice, e.name, e.phase()))
			} else if e.phase() != phaseReady {
				why = append(why, fmt.Sprintf("slice %s lists pod %s %s", slice, e.name, e.phase()))
			}
		}
	}
	for uid, name := range want {
		if seen[uid] != 1 {
			why = append(why, fmt.Sprintf("pod %s listed %d times", name, seen[uid]))
		}
	}
	sort.Strings(why)
	return why
}

func (r *rolloutRecorder) podsNotGone(uids map[types.UID]string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var why []string
	for uid, name := range uids {
		if p := r.pods[uid]; p == nil || !p.gone {
			why = append(why, "pod "+name+" still exists")
		}
	}
	sort.Strings(why)
	return why
}

// livePods are the pods neither deleting nor among except.
func (r *rolloutRecorder) livePods(except map[types.UID]string) map[types.UID]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := map[types.UID]string{}
	for uid, p := range r.pods {
		if _, old := except[uid]; !old && !p.deleting {
			live[uid] = p.name
		}
	}
	return live
}

// deletedAt is when the pod was seen deleting, since the recorder began.
func (r *rolloutRecorder) deletedAt(uid types.UID) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pods[uid]; p != nil {
		return p.deletingAt
	}
	return 0
}

func TestTheTerminationCheckFlagsEachWayASliceCanMisrepresentADeletedPod(t *testing.T) {
	const pod = types.UID("old")
	ready := endpointState{uid: pod, name: "web-old", ready: true, serving: true}
	serving := endpointState{uid: pod, name: "web-old", serving: true, terminating: true}
	draining := endpointState{uid: pod, name: "web-old", terminating: true}
	other := endpointState{uid: "new", name: "web-new", ready: true, serving: true}
	v := func(rv uint64, eps ...endpointState) sliceVersion {
		return sliceVersion{rv: rv, slice: "web-1", endpoints: eps}
	}
	for _, tc := range []struct {
		name     string
		versions []sliceVersion
		want     []string // substrings of the problems, in order; none for a clean run
	}{
		{"a clean termination passes", []sliceVersion{
			v(5, ready), v(7, serving, other), v(8, draining, other), v(9, other),
		}, nil},
		{"a slice written before the deletion may still list the pod ready", []sliceVersion{
			v(5, ready), v(6, ready, other), v(7, serving, other), v(8, draining, other), v(9, other),
		}, nil},
		{"one slice from a controller cache that lagged the deletion may list it ready", []sliceVersion{
			v(5, ready), v(7, ready, other), v(8, serving, other), v(9, draining, other), v(10, other),
		}, nil},
		{"a pod listed ready again once it was terminating is flagged", []sliceVersion{
			v(5, ready), v(7, serving, other), v(8, ready, other), v(9, draining, other), v(10, other),
		}, []string{`went "terminating+serving -> ready -> terminating+not-serving -> absent"`}},
		{"a deleted pod that stays ready to the end is flagged", []sliceVersion{
			v(5, ready), v(7, ready, other),
		}, []string{`went "ready"`}},
		{"a pod that never shows serving while terminating is flagged", []sliceVersion{
			v(5, ready), v(7, draining, other), v(8, other),
		}, []string{`went "terminating+not-serving -> absent"`}},
		{"a pod still listed at the end is flagged", []sliceVersion{
			v(5, ready), v(7, serving, other), v(8, draining, other),
		}, []string{`went "terminating+serving -> terminating+not-serving"`}},
		{"a pod that comes back after leaving is flagged", []sliceVersion{
			v(7, serving), v(8, draining), v(9, other), v(10, draining, other), v(11, other),
		}, []string{`absent -> terminating+not-serving -> absent"`}},
		{"an endpoint ready while terminating is flagged", []sliceVersion{
			v(5, endpointState{uid: "x", name: "web-x", ready: true, serving: true, terminating: true}),
			v(7, serving), v(8, draining), v(9),
		}, []string{"lists pod web-x ready but"}},
		{"a deleted slice takes its endpoints away", []sliceVersion{
			v(7, serving), v(8, draining), {rv: 9, slice: "web-1", deleted: true, endpoints: []endpointState{draining}},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := checkTerminations(tc.versions, map[types.UID]uint64{pod: 6}, map[types.UID]string{pod: "web-old"})
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d matching %q", problems, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(problems[i], w) {
					t.Errorf("problem %d is %q, want it to say %q", i, problems[i], w)
				}
			}
		})
	}
}
