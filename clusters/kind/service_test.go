package kind

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// checkClusterIP runs a netserver per node behind a ClusterIP Service
// and asks it from a netserver pod (through the API's exec) and from
// every node (through the container runtime) until every backend has
// answered each; then asks each node's proxier health from the outside
// client.
func checkClusterIP(ctx context.Context, t *testing.T, client kubernetes.Interface, c *Cluster) {
	ns := "kind-test"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, netservers(labels, int32(len(c.Nodes()))), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := readyPods(ctx, t, client, ns, "app=web", len(c.Nodes()))
	url := fmt.Sprintf("http://%s:80/hostname", svc.Spec.ClusterIP)
	// One backend per node: a source that reaches every backend has
	// crossed to the other node through the pod network.
	reachesAll := func(who string, probe func() ([]byte, error)) {
		t.Helper()
		seen := map[string]bool{}
		var last string
		deadline := time.Now().Add(30 * time.Second) // the proxier syncs a new Service within its minSyncPeriod
		for len(seen) < len(pods) && time.Now().Before(deadline) {
			out, err := probe()
			got := strings.TrimSpace(string(out))
			if err == nil && slices.Contains(pods, got) {
				seen[got] = true
			} else {
				last = fmt.Sprintf("%q (%v)", got, err)
				time.Sleep(500 * time.Millisecond)
			}
		}
		if len(seen) < len(pods) {
			t.Errorf("%s: %s reached %v of backends %v; last failure %s", who, url, seen, pods, last)
		}
	}
	reachesAll("pod "+pods[0], func() ([]byte, error) { return c.ExecInPod(ctx, ns, pods[0], "netprobe", "http", url) })
	for _, n := range c.Nodes() {
		reachesAll("node "+n.Name, func() ([]byte, error) { return c.ExecOnNode(ctx, n.Name, "netprobe", "http", url) })
	}
	for _, n := range c.Nodes() {
		out, err := c.ExecOutside(ctx, "netprobe", "status", fmt.Sprintf("http://%s:10256/healthz", n.IP))
		if err != nil || !strings.HasPrefix(string(out), "200 ") {
			t.Errorf("outside client: proxier health on node %s (%s): %q (%v), want 200", n.Name, n.IP, out, err)
		}
	}
}

// checkExternalIP routes the outside client's traffic for an external IP
// to the last node, as the network in front of a cluster would, and asks
// the Service there; the address never leaves the cluster network.
func checkExternalIP(ctx context.Context, t *testing.T, client kubernetes.Interface, c *Cluster) {
	const externalIP = "203.0.113.10"
	svc, err := client.CoreV1().Services("kind-test").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.ExternalIPs = []string{externalIP}
	if _, err := client.CoreV1().Services("kind-test").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nodes := c.Nodes()
	if err := c.RouteOutside(ctx, externalIP, nodes[len(nodes)-1].Name); err != nil {
		t.Fatal(err)
	}
	url := "http://" + externalIP + ":80/hostname"
	var out []byte
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		out, err = c.ExecOutside(ctx, "netprobe", "http", url)
		return err == nil, nil
	})
	if err != nil {
		t.Errorf("outside client through node %s: %s: %q (%v)", nodes[len(nodes)-1].Name, url, out, err)
	}
}

func netservers(labels map[string]string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
							TopologyKey:   corev1.LabelHostname,
						}},
					}},
					Containers: []corev1.Container{{
						Name:            "netserver",
						Image:           NetserverImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
}

// readyPods waits for n Ready pods of selector and returns their names.
func readyPods(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, selector string, n int) []string {
	t.Helper()
	var names []string
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		names, last = nil, ""
		for _, p := range list.Items {
			ready := slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
				return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
			})
			if ready {
				names = append(names, p.Name)
			} else {
				last += fmt.Sprintf(" %s: %s %v;", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
			}
		}
		return len(names) == n, nil
	})
	if err != nil {
		t.Fatalf("%d of %d pods %s ready in %s:%s", len(names), n, selector, ns, last)
	}
	return names
}
