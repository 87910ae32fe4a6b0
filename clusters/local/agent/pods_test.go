package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// TestNodeAgentRunsPodsOnNamespaceNodes drives two agents against a real
// control plane, step by step on one cluster (a control plane start costs
// seconds on two busy cores).
func TestNodeAgentRunsPodsOnNamespaceNodes(t *testing.T) {
	began := time.Now()
	c := startCluster(t, 2)
	ctx := context.Background()

	t.Run("every node turns Ready with a podCIDR from the controller-manager and a Lease", func(t *testing.T) {
		for _, name := range []string{"node-1", "node-2"} {
			c.eventually(name+" Ready with a podCIDR", time.Minute, func(ctx context.Context) (bool, error) {
				n, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady {
						return cond.Status == corev1.ConditionTrue && n.Spec.PodCIDR != "", nil
					}
				}
				return false, nil
			})
			n := c.node(name)
			if !inCIDR(t, strings.TrimSuffix(n.Spec.PodCIDR, "/24"), "10.244.0.0/16") || !strings.HasSuffix(n.Spec.PodCIDR, "/24") {
				t.Errorf("%s podCIDR %s, want a /24 of 10.244.0.0/16", name, n.Spec.PodCIDR)
			}
			if ip := internalIP(n); ip == nil || !strings.HasPrefix(ip.String(), "198.18.0.1") {
				t.Errorf("%s InternalIP = %v, want 198.18.0.1x", name, ip)
			}
			if n.Labels["kubernetes.io/hostname"] != name || n.Labels["kubernetes.io/os"] != "linux" {
				t.Errorf("%s labels = %v", name, n.Labels)
			}
			if got := n.Status.Allocatable[corev1.ResourcePods]; got.Value() != 110 {
				t.Errorf("%s allocatable pods = %s, want 110", name, got.String())
			}
			var lease *coordinationv1.Lease
			c.eventually(name+" lease", 30*time.Second, func(ctx context.Context) (bool, error) {
				l, err := c.client.CoordinationV1().Leases("kube-node-lease").Get(ctx, name, metav1.GetOptions{})
				lease = l
				return err == nil, err
			})
			if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != name || lease.Spec.RenewTime == nil {
				t.Errorf("%s lease spec = %+v", name, lease.Spec)
			}
		}
		// Each node routes the other's podCIDR via the other's underlay IP.
		other := c.node("node-2").Spec.PodCIDR
		c.eventually("node-1 routes node-2's pods", 30*time.Second, func(context.Context) (bool, error) {
			return strings.Contains(routes(t, c.topo.nodes[0]), other+" via 198.18.0.12"), nil
		})
	})

	var web, client *corev1.Pod
	t.Run("a netserver pod runs with an IP of its node's CIDR and turns Ready by its httpGet probe", func(t *testing.T) {
		c.create(netserverPod("web", "node-1", "--shutdown-delay=3s"))
		c.create(netserverPod("client", "node-2"))
		web, client = c.waitReady("web"), c.waitReady("client")
		for _, p := range []*corev1.Pod{web, client} {
			n := c.node(p.Spec.NodeName)
			if !inCIDR(t, p.Status.PodIP, n.Spec.PodCIDR) {
				t.Errorf("pod %s IP %s is outside node %s's CIDR %s", p.Name, p.Status.PodIP, n.Name, n.Spec.PodCIDR)
			}
			if p.Status.HostIP != internalIP(n).String() {
				t.Errorf("pod %s hostIP %s, want %s", p.Name, p.Status.HostIP, internalIP(n))
			}
			cs := p.Status.ContainerStatuses
			if len(cs) != 1 || !cs[0].Ready || cs[0].State.Running == nil || cs[0].Started == nil || !*cs[0].Started {
				t.Errorf("pod %s container status = %+v", p.Name, cs)
			}
		}
		if web.Spec.NodeName != "node-1" || client.Spec.NodeName != "node-2" {
			t.Fatalf("scheduler bound web to %q and client to %q", web.Spec.NodeName, client.Spec.NodeName)
		}
	})
	if web == nil || client == nil {
		t.FailNow()
	}
	webURL := "http://" + net.JoinHostPort(web.Status.PodIP, "8080")

	t.Run("the pod answers its name from its node and from a pod on the other node", func(t *testing.T) {
		code, body, err := httpGetIn(c.topo.nodes[0], webURL+"/hostname")
		if err != nil || code != 200 || body != "web" {
			t.Errorf("from node-1: GET /hostname = %d %q %v, want 200 web", code, body, err)
		}
		clientNs := PodNetns(c.topo.name+"-p-", client.UID)
		code, body, err = httpGetIn(clientNs, webURL+"/hostname")
		if err != nil || code != 200 || body != "web" {
			t.Errorf("from pod client on node-2: GET /hostname = %d %q %v, want 200 web", code, body, err)
		}
		// Routed, not masqueraded: the server sees the client pod's IP.
		_, body, err = httpGetIn(clientNs, webURL+"/clientip")
		if host, _, _ := net.SplitHostPort(body); err != nil || host != client.Status.PodIP {
			t.Errorf("from pod client: /clientip = %q %v, want %s:port", body, err, client.Status.PodIP)
		}
	})

	t.Run("an exec readiness probe follows its command's exit status", func(t *testing.T) {
		flag := filepath.Join(c.dir, "ready-flag")
		p := netserverPod("exec-ready", "node-2")
		p.Spec.Containers[0].ReadinessProbe.ProbeHandler = corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-e", flag}}}
		c.create(p)
		c.eventually("exec-ready Running", time.Minute, func(ctx context.Context) (bool, error) {
			p, err := c.pod(ctx, "exec-ready")
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		time.Sleep(2 * time.Second) // two probe periods with the command failing
		if p, err := c.pod(ctx, "exec-ready"); err != nil || podReady(p) {
			t.Fatalf("exec-ready is Ready while its probe command fails (err %v)", err)
		}
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		c.waitReady("exec-ready")
		os.Remove(flag)
		c.eventually("exec-ready unready again", 30*time.Second, func(ctx context.Context) (bool, error) {
			p, err := c.pod(ctx, "exec-ready")
			return err == nil && !podReady(p), err
		})
	})

	t.Run("a container that exits is restarted with backoff and counted", func(t *testing.T) {
		p := netserverPod("crasher", "node-1")
		p.Spec.Containers[0].Command = []string{"sh", "-c", "exit 3"}
		p.Spec.Containers[0].ReadinessProbe = nil
		c.create(p)
		var last *corev1.Pod
		c.eventually("crasher restarted twice", time.Minute, func(ctx context.Context) (bool, error) {
			p, err := c.pod(ctx, "crasher")
			last = p
			return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2, err
		})
		cs := last.Status.ContainerStatuses[0]
		if term := cs.LastTerminationState.Terminated; term == nil || term.ExitCode != 3 {
			t.Errorf("crasher last termination = %+v, want exit code 3", cs.LastTerminationState)
		}
	})

	t.Run("an unknown image leaves the pod Pending with ErrImageNeverPull and a Warning event", func(t *testing.T) {
		p := netserverPod("bogus", "node-1")
		p.Spec.Containers[0].Image = "registry.example/nope:2"
		p = c.create(p)
		c.eventually("bogus waiting with ErrImageNeverPull", time.Minute, func(ctx context.Context) (bool, error) {
			p, err := c.pod(ctx, "bogus")
			if err != nil || len(p.Status.ContainerStatuses) != 1 {
				return false, err
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			return p.Status.Phase == corev1.PodPending && w != nil && w.Reason == "ErrImageNeverPull", nil
		})
		c.eventually("a Warning event names the image and the known ones", 30*time.Second, func(ctx context.Context) (bool, error) {
			evs, err := c.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "bogus").String()})
			if err != nil {
				return false, err
			}
			for _, e := range evs.Items {
				if e.Type == corev1.EventTypeWarning && e.Reason == "ErrImageNeverPull" &&
					strings.Contains(e.Message, "registry.example/nope:2") && strings.Contains(e.Message, "proxyproof/netserver") {
					return true, nil
				}
			}
			return false, fmt.Errorf("events: %v", evs.Items)
		})
		if !c.topo.hasNoPodNamespaceFor(p) {
			t.Error("a pod with an unknown image got a network namespace")
		}
	})

	t.Run("deleting a pod stops it gracefully and removes its network before the object goes", func(t *testing.T) {
		nodeNs := c.topo.nodes[0]
		podNs := PodNetns(c.topo.name+"-p-", web.UID)
		veth := hostVeth(web.UID)
		if !linkExists(t, nodeNs, veth) || !strings.Contains(routes(t, nodeNs), web.Status.PodIP+" dev "+veth) {
			t.Fatalf("before deletion: want veth %s and a route to %s in %s:\n%s", veth, web.Status.PodIP, nodeNs, routes(t, nodeNs))
		}
		deleted := time.Now()
		if err := c.client.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// netserver's shutdown delay is 3s: /readyz fails meanwhile and the
		// agent's probe turns the pod unready.
		c.eventually("web /readyz 503 during its shutdown delay", 3*time.Second, func(context.Context) (bool, error) {
			code, _, err := httpGetIn(nodeNs, webURL+"/readyz")
			return code == http.StatusServiceUnavailable, err
		})
		c.eventually("web unready while terminating", 3*time.Second, func(ctx context.Context) (bool, error) {
			p, err := c.pod(ctx, "web")
			return err == nil && p.DeletionTimestamp != nil && !podReady(p), err
		})
		c.eventually("web deleted once its process exited", 15*time.Second, func(ctx context.Context) (bool, error) {
			_, err := c.pod(ctx, "web")
			return isNotFound(err), nil
		})
		took := time.Since(deleted)
		if took < 3*time.Second || took > 15*time.Second {
			t.Errorf("web went away %s after deletion; want after its 3s shutdown delay, well before its 20s grace", took)
		}
		log, _ := os.ReadFile(filepath.Join(c.dir, "nodes", "node-1", "pods", "default_web", "log"))
		if !strings.Contains(string(log), "netserver stopping") {
			t.Errorf("web's log shows no SIGTERM handling:\n%s", log)
		}
		if _, err := os.Stat("/run/netns/" + podNs); err == nil {
			t.Errorf("pod namespace %s still exists", podNs)
		}
		if linkExists(t, nodeNs, veth) {
			t.Errorf("veth %s still exists in %s", veth, nodeNs)
		}
		if r := routes(t, nodeNs); strings.Contains(r, web.Status.PodIP+" ") {
			t.Errorf("route to %s still in %s:\n%s", web.Status.PodIP, nodeNs, r)
		}
		if ipamHolds(t, filepath.Join(c.dir, "nodes", "node-1"), string(web.UID)) {
			t.Error("ipam.json still holds web's IP")
		}
	})

	t.Run("stopping an agent stops its pods and leaves no pod namespace", func(t *testing.T) {
		podNs := PodNetns(c.topo.name+"-p-", client.UID)
		out, err := exec.Command("ip", "netns", "pids", podNs).Output()
		if err != nil || len(strings.Fields(string(out))) == 0 {
			t.Fatalf("ip netns pids %s = %q %v, want the client's process", podNs, out, err)
		}
		pids := strings.Fields(string(out))
		for _, node := range []string{"node-1", "node-2"} {
			if err := c.stops[node](); err != nil {
				t.Errorf("agent %s: %v", node, err)
			}
		}
		if left := c.topo.podNamespaces(); len(left) > 0 {
			t.Errorf("pod namespaces left after the agents stopped: %v", left)
		}
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + pid); err == nil {
				t.Errorf("pod process %s still runs after its agent stopped", pid)
			}
		}
	})
	t.Logf("whole run took %s", time.Since(began).Round(100*time.Millisecond))
}

func (tp *topology) hasNoPodNamespaceFor(p *corev1.Pod) bool {
	_, err := os.Stat("/run/netns/" + PodNetns(tp.name+"-p-", p.UID))
	return err != nil
}
