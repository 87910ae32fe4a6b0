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

// checkClusterIP runs two netservers behind a ClusterIP Service and asks
// it from a netserver pod (through the API's exec), from every node
// (through the container runtime), and asks the proxier's health on a
// node from the outside client.
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
	answered := func(who string, out []byte, err error) {
		t.Helper()
		got := strings.TrimSpace(string(out))
		if err != nil || !slices.Contains(pods, got) {
			t.Errorf("%s: %s answered %q (%v), want one of %v", who, url, got, err, pods)
		}
	}
	// The proxier programs a new Service within its minSyncPeriod.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.ExecInPod(ctx, ns, pods[0], "netprobe", "http", url)
		if err == nil || time.Now().After(deadline) {
			answered("pod "+pods[0], out, err)
			break
		}
		time.Sleep(time.Second)
	}
	for _, n := range c.Nodes() {
		out, err := c.ExecOnNode(ctx, n.Name, "netprobe", "http", url)
		answered("node "+n.Name, out, err)
	}
	for _, n := range c.Nodes() {
		out, err := c.ExecOutside(ctx, "netprobe", "status", fmt.Sprintf("http://%s:10256/healthz", n.IP))
		if err != nil || !strings.HasPrefix(string(out), "200 ") {
			t.Errorf("outside client: proxier health on node %s (%s): %q (%v), want 200", n.Name, n.IP, out, err)
		}
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
