package local

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/clusters/local/controlplane"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func TestTheServiceIsReachableFromAPodOnEveryNode(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name, proxier, mode string
	}{
		{"with our proxier in iptables mode", ProxierOurs, ModeIPTables},
		{"with our proxier in nftables mode", ProxierOurs, ModeNFTables},
		{"with upstream kube-proxy in iptables mode", ProxierKubeProxy, ModeIPTables},
		{"with upstream kube-proxy in nftables mode", ProxierKubeProxy, ModeNFTables},
		{"with our proxier in ipvs mode", ProxierOurs, ModeIPVS},
		{"with our proxier on mixed-mode nodes (iptables, nftables, ipvs)", ProxierOurs, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := []NodeSpec{{Mode: tc.mode}, {Mode: tc.mode}, {Mode: tc.mode}}
			if tc.mode == "" {
				nodes = []NodeSpec{{Mode: ModeIPTables}, {Mode: ModeNFTables}, {Mode: ModeIPVS}}
			}
			c := create(t, Spec{Proxier: tc.proxier, Nodes: nodes})
			for _, n := range c.Nodes() {
				// On a kernel without ip_vs an ipvs node must be a VM node:
				// the test would otherwise prove nothing about IPVS.
				if n.Mode == ModeIPVS && n.VM == hostkernel.HasIPVS() {
					t.Fatalf("node %s (ipvs): VM=%v on a host where ip_vs present=%v", n.Name, n.VM, hostkernel.HasIPVS())
				}
			}
			serviceReachableFromEveryNode(t, c)
		})
	}
}

const netserverImage = "proxyproof/netserver:latest"

// serviceReachableFromEveryNode deploys 3 netservers, one per node, behind
// a ClusterIP Service, and fetches /hostname through the Service from
// inside each of them.
func serviceReachableFromEveryNode(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	labels := map[string]string{"app": "netserver"}
	if _, err := client.AppsV1().Deployments("default").Create(ctx, netserverDeployment(labels), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := createNetserverService(ctx, t, client, labels)
	pods := waitPodsRunningApart(ctx, t, c, client, 3)
	t.Logf("3 pods Running and Ready on 3 nodes %s after the Deployment was created", time.Since(began).Round(100*time.Millisecond))
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	// Every backend must answer from every node: a pod reaching only its
	// local backend would pass a single request a third of the time.
	url := fmt.Sprintf("http://%s:80/hostname", svc.Spec.ClusterIP)
	for _, p := range pods {
		seen := map[string]int{}
		var lastErr error
		deadline := time.Now().Add(60 * time.Second)
		for len(seen) < len(names) && time.Now().Before(deadline) {
			out, err := c.ExecInPod(ctx, p.Namespace, p.Name, c.Bin("localcluster"), "get", "--timeout", "2s", url)
			if name := strings.TrimSpace(string(out)); err == nil && names[name] {
				seen[name]++
			} else {
				lastErr = fmt.Errorf("%q, %v", out, err)
				time.Sleep(200 * time.Millisecond)
			}
		}
		if len(seen) < len(names) {
			t.Errorf("from pod %s on %s: GET %s reached only %v of the 3 backends; last failure %v; routes of %s:\n%s",
				p.Name, p.Spec.NodeName, url, seen, lastErr, p.Spec.NodeName, nodeRoutes(ctx, c, p.Spec.NodeName))
			continue
		}
		t.Logf("from pod %s on %s: %s reached every backend %v", p.Name, p.Spec.NodeName, url, seen)
	}
}

func nodeRoutes(ctx context.Context, c *Cluster, node string) string {
	out, err := c.ExecOnNode(ctx, node, "ip", "route")
	if err != nil {
		return err.Error()
	}
	return string(out)
}

func netserverDeployment(labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "netserver"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// One per node: the test is about every node's proxier.
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
							TopologyKey:   corev1.LabelHostname,
						}},
					}},
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name:  "netserver",
						Image: netserverImage,
						Args:  []string{"--http-port=8080", "--udp-port=8081", "--shutdown-delay=1s"},
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
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

// waitPodsRunningApart waits for n Running, Ready pods of the netserver
// Deployment on n different nodes, each IP inside its node's podCIDR.
func waitPodsRunningApart(ctx context.Context, t *testing.T, c *Cluster, client kubernetes.Interface, n int) []corev1.Pod {
	t.Helper()
	cidrs := map[string]netip.Prefix{}
	for _, node := range c.Nodes() {
		cidrs[node.Name] = netip.MustParsePrefix(node.PodCIDR)
	}
	var why string
	for {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=netserver"})
		if err != nil {
			why = err.Error()
		} else {
			why = ""
			nodes := map[string]bool{}
			var ready []corev1.Pod
			for _, p := range list.Items {
				ip, perr := netip.ParseAddr(p.Status.PodIP)
				switch {
				case p.DeletionTimestamp != nil:
				case p.Status.Phase != corev1.PodRunning || !podReady(&p):
					why += fmt.Sprintf(" pod %s on %q: %s ready=%v;", p.Name, p.Spec.NodeName, p.Status.Phase, podReady(&p))
				case perr != nil || !cidrs[p.Spec.NodeName].Contains(ip):
					t.Fatalf("pod %s on %s has IP %q outside its node's podCIDR %s", p.Name, p.Spec.NodeName, p.Status.PodIP, cidrs[p.Spec.NodeName])
				default:
					nodes[p.Spec.NodeName] = true
					ready = append(ready, p)
				}
			}
			if len(ready) == n && len(nodes) == n {
				return ready
			}
			why += fmt.Sprintf(" %d ready pods on %d nodes", len(ready), len(nodes))
		}
		select {
		case <-ctx.Done():
			var logs strings.Builder
			for _, node := range c.Nodes() {
				fmt.Fprintf(&logs, "--- %s agent log:\n%s\n", node.Name, controlplane.Tail(c.paths.nodeDir(node.Name)+"/agent.log", 10))
			}
			t.Fatalf("pods not Running on %d nodes: %s\n%s", n, why, logs.String())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// createNetserverService makes Service default/netserver: port 80 to the
// netservers' HTTP port 8080 on the pods matching labels.
func createNetserverService(ctx context.Context, t *testing.T, client kubernetes.Interface, labels map[string]string) *corev1.Service {
	t.Helper()
	svc, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "netserver"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
