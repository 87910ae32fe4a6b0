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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
)

// The rollout's pods drain for rolloutShutdownDelay after SIGTERM (/readyz
// 503, still serving), long enough for a 1 s readiness probe with the
// default failure threshold of 3 to flip them unready before they exit, so
// slices must show serving=true and then serving=false. The grace period
// is longer, so SIGTERM, not SIGKILL, ends them.
const (
	rolloutShutdownDelay = 6 * time.Second
	rolloutGraceSeconds  = 20
)

func TestARollingUpdateKeepsEndpointSlicesCorrectAndTheServiceAnswering(t *testing.T) {
	requireRoot(t)
	c := create(t, Spec{Nodes: []NodeSpec{{Mode: ModeIPTables}, {Mode: ModeIPTables}, {Mode: ModeIPTables}}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "netserver"}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, rolloutDeployment(labels), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := createNetserverService(ctx, t, client, labels)
	clientPod := startClientPod(ctx, t, client)
	old := waitReadyPods(ctx, t, client, "app=netserver", 3)
	oldUIDs := map[types.UID]string{}
	for _, p := range old {
		oldUIDs[p.UID] = p.Name
	}
	url := fmt.Sprintf("http://%s:80/hostname", svc.Spec.ClusterIP)
	clientPod = waitClientReachesAll(ctx, t, c, client, clientPod, url, oldUIDs)

	rec := startRolloutRecorder(ctx, t, client, "default", "netserver", "app=netserver")
	rec.waitFor(ctx, t, "the slices to list the 3 old pods ready", func() []string { return rec.endpointsAre(oldUIDs) })
	probe := probeContinuously(ctx, c.PodNamespace(string(clientPod.UID)), c.Bin("localcluster"), url)

	began := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"proxyproof.io/rollout":%q}}}}}`, began.Format(time.RFC3339Nano))
	if _, err := client.AppsV1().Deployments("default").Patch(ctx, "netserver", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(ctx, t, "the rollout to finish and the old pods to be gone", func() []string {
		return append(rolloutUnfinished(ctx, client), rec.podsNotGone(oldUIDs)...)
	})
	took := time.Since(began)
	newUIDs := rec.livePods(oldUIDs)
	rec.waitFor(ctx, t, "the slices to list exactly the 3 new pods ready", func() []string {
		if len(newUIDs) != 3 {
			newUIDs = rec.livePods(oldUIDs)
			return []string{fmt.Sprintf("%d live new pods, want 3", len(newUIDs))}
		}
		return rec.endpointsAre(newUIDs)
	})
	settled := time.Since(began)
	// A little more probing after the end state, so a proxier that lags
	// the final slice would show up as failures too.
	time.Sleep(2 * time.Second)
	probe.stop()
	t.Logf("rollout of 3 pods began at +%s and took %s (slices settled after %s)",
		began.Sub(rec.began).Round(time.Millisecond), took.Round(100*time.Millisecond), settled.Round(100*time.Millisecond))
	t.Logf("service %s from pod %s: %d requests answered, %d failed; answers by pod %v",
		url, clientPod.Name, probe.ok, probe.failed, probe.answers)
	checkRollout(t, rec, probe, oldUIDs, newUIDs)
}

// checkRollout reports what the watches and the probe saw and fails on
// anything the rollout got wrong.
func checkRollout(t *testing.T, rec *rolloutRecorder, probe *serviceProbe, oldUIDs, newUIDs map[types.UID]string) {
	t.Helper()
	versions, deleting := rec.stop()
	names := rec.names()
	t.Logf("%d EndpointSlice updates watched after %d listed; timeline:\n%s",
		len(versions)-rec.listed, rec.listed, describeVersions(versions, names))

	sequences, problems := checkTerminations(versions, deleting, names)
	for uid, name := range oldUIDs {
		// How long new connections still reached a terminating pod shows
		// how far the proxiers lag the slice that marked it.
		lag := "none after its deletion"
		if last, del := probe.last[name], rec.began.Add(rec.deletedAt(uid)); last.After(del) {
			lag = "the last " + last.Sub(del).Round(time.Millisecond).String() + " after its deletion"
		}
		t.Logf("old pod %s deleted at +%s, then %s; answers through the Service: %s",
			name, rec.deletedAt(uid).Round(time.Millisecond), strings.Join(sequences[uid], " -> "), lag)
		if _, ok := deleting[uid]; !ok {
			problems = append(problems, fmt.Sprintf("old pod %s was never seen deleting", name))
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
	if probe.failed > 0 {
		t.Errorf("the Service failed %d of %d requests during the rollout; first failures:\n%s",
			probe.failed, probe.ok+probe.failed, strings.Join(probe.failures, "\n"))
	}
	if probe.ok < 20 {
		t.Errorf("only %d requests answered: the probe did not cover the rollout", probe.ok)
	}
	for uid, name := range newUIDs {
		if probe.answers[name] == 0 {
			t.Errorf("new pod %s (%s) never answered through the Service", name, uid)
		}
	}
}

// rolloutDeployment is netserverDeployment made to roll: one surge pod and
// none unavailable, so the anti-affinity becomes a preference (a required
// one leaves the fourth pod of 3 nodes Pending forever), and a drain delay
// inside a longer grace period.
func rolloutDeployment(labels map[string]string) *appsv1.Deployment {
	d := netserverDeployment(labels)
	d.Spec.Strategy = appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			MaxSurge:       ptr.To(intstr.FromInt32(1)),
		},
	}
	spec := &d.Spec.Template.Spec
	spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
				TopologyKey:   corev1.LabelHostname,
			},
		}},
	}}
	spec.TerminationGracePeriodSeconds = ptr.To[int64](rolloutGraceSeconds)
	ctr := &spec.Containers[0]
	ctr.Args = []string{"--http-port=8080", "--udp-port=8081", "--shutdown-delay=" + rolloutShutdownDelay.String()}
	ctr.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(8080)}},
		PeriodSeconds:    1,
		FailureThreshold: 3,
	}
	return d
}

// startClientPod runs a netserver outside the Service's selector, whose
// network namespace the requests come from.
func startClientPod(ctx context.Context, t *testing.T, client kubernetes.Interface) *corev1.Pod {
	t.Helper()
	pod, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Labels: map[string]string{"app": "client"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{
				Name: "client", Image: netserverImage,
				Args: []string{"--http-port=8080", "--udp-port=-1", "--shutdown-delay=0s"},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// waitReadyPods waits for exactly n Running, Ready, not deleting pods.
func waitReadyPods(ctx context.Context, t *testing.T, client kubernetes.Interface, selector string, n int) []corev1.Pod {
	t.Helper()
	var why string
	for {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			why = err.Error()
		} else {
			var ready []corev1.Pod
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(&p) {
					ready = append(ready, p)
				}
			}
			if len(ready) == n {
				return ready
			}
			why = fmt.Sprintf("%d of %d pods ready", len(ready), len(list.Items))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pods %s not ready: %s", selector, why)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitClientReachesAll waits until the client pod runs and has reached
// every old backend through the Service: the proxiers are synced before
// the rollout starts, so later failures are the rollout's.
func waitClientReachesAll(ctx context.Context, t *testing.T, c *Cluster, client kubernetes.Interface, pod *corev1.Pod, url string, backends map[types.UID]string) *corev1.Pod {
	t.Helper()
	want := map[string]bool{}
	for _, name := range backends {
		want[name] = true
	}
	seen := map[string]bool{}
	var last string
	for len(seen) < len(want) {
		out, err := c.ExecInPod(ctx, pod.Namespace, pod.Name, c.Bin("localcluster"), "get", "--timeout", "2s", url)
		if name := strings.TrimSpace(string(out)); err == nil && want[name] {
			seen[name] = true
			continue
		}
		last = fmt.Sprintf("%q, %v", out, err)
		select {
		case <-ctx.Done():
			t.Fatalf("client pod never reached all backends %v through %s (saw %v); last: %s", want, url, seen, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
	got, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// rolloutUnfinished says why the Deployment has not completed its rollout.
func rolloutUnfinished(ctx context.Context, client kubernetes.Interface) []string {
	d, err := client.AppsV1().Deployments("default").Get(ctx, "netserver", metav1.GetOptions{})
	if err != nil {
		return []string{err.Error()}
	}
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != 3 || s.Replicas != 3 || s.AvailableReplicas != 3 {
		return []string{fmt.Sprintf("deployment generation %d observed %d, replicas %d updated %d available %d",
			d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.AvailableReplicas)}
	}
	return nil
}

// serviceProbe is the outcome of requests made back to back through the
// Service; read it only after stop.
type serviceProbe struct {
	ok, failed int
	failures   []string
	answers    map[string]int
	last       map[string]time.Time // each backend's last answer
	stop       func()
}

// probeContinuously sends GET url from network namespace netns, one
// request (a new process, so a new connection) every 100 ms, until stop.
// It runs in the namespace directly rather than through ExecInPod, so that
// an API hiccup is not counted as the Service failing.
func probeContinuously(ctx context.Context, netns, bin, url string) *serviceProbe {
	p := &serviceProbe{answers: map[string]int{}, last: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			out, err := execIn(ctx, netns, []string{bin, "get", "--timeout", "2s", url})
			switch {
			case ctx.Err() != nil:
			case err != nil:
				p.failed++
				if len(p.failures) < 10 {
					p.failures = append(p.failures, fmt.Sprintf("  at +%s: %v", time.Since(began).Round(time.Millisecond), err))
				}
			default:
				p.ok++
				name := strings.TrimSpace(string(out))
				p.answers[name]++
				p.last[name] = time.Now()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	p.stop = func() {
		cancel()
		<-done
	}
	return p
}

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
//   - an endpoint ready in a slice written after its pod's deletion;
//   - a deleted pod not going ready -> terminating+serving ->
//     terminating+not-serving -> absent.
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
			if rv, ok := deleting[e.uid]; ok && e.ready && v.rv > rv {
				problems = append(problems, fmt.Sprintf("slice %s at +%s (rv %d) lists pod %s ready after its deletion (rv %d)", v.slice, v.at.Round(time.Millisecond), v.rv, e.name, rv))
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
	var uids []types.UID
	for uid := range deleting {
		uids = append(uids, uid)
	}
	sort.Slice(uids, func(i, j int) bool { return names[uids[i]] < names[uids[j]] })
	for _, uid := range uids {
		if got := strings.Join(seq[uid], " -> "); got != want {
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
		{"a ready endpoint written after the deletion is flagged", []sliceVersion{
			v(5, ready), v(7, ready, other), v(8, serving, other), v(9, draining, other), v(10, other),
		}, []string{"ready after its deletion", `went "ready -> terminating+serving`}},
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
