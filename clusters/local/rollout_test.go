package local

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
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
