package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/clusters/local/controlplane"
)

// cluster is a control plane plus agents running in-process on a topology.
type cluster struct {
	t      *testing.T
	topo   *topology
	cp     *controlplane.ControlPlane
	client kubernetes.Interface
	dir    string
	stops  map[string]func() error // node -> stop its agent, returning Run's error
}

func startCluster(t *testing.T, nodes int) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and routes")
	}
	if testing.Short() {
		t.Skip("starts a control plane; skipped with -short")
	}
	bins := controlPlaneBinaries(t)
	dir := t.TempDir()
	topo := newTopology(t, nodes)
	netserver := buildNetserver(t, dir)
	began := time.Now()
	cp, err := controlplane.Start(context.Background(), controlplane.Spec{
		Name: topo.name, Dir: filepath.Join(dir, "controlplane"), Binaries: &bins, AdvertiseAddress: "198.18.0.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	t.Logf("control plane ready in %s", time.Since(began).Round(10*time.Millisecond))
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, topo: topo, cp: cp, client: kubernetes.NewForConfigOrDie(cfg), dir: dir, stops: map[string]func() error{}}
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("node-%d", i)
		kubeconfig, err := cp.NodeKubeconfig(name)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		acfg := Config{
			NodeName: name, NodeIP: fmt.Sprintf("198.18.0.%d", 10+i), Kubeconfig: kubeconfig, RoutesKubeconfig: cp.ProxierKubeconfig,
			StateDir: filepath.Join(dir, "nodes", name), PodNetnsPrefix: topo.name + "-p-",
			Programs: map[string]string{"proxyproof/netserver": netserver}, Netns: topo.nodes[i-1],
			RestartBackoff: time.Second, MaxRestartBackoff: 4 * time.Second,
		}
		go func() { errc <- Run(ctx, acfg) }()
		var stopped bool
		var runErr error
		stop := func() error {
			if !stopped {
				cancel()
				select {
				case runErr = <-errc:
				case <-time.After(30 * time.Second):
					runErr = fmt.Errorf("agent %s still running 30s after its stop", name)
				}
				stopped = true
			}
			return runErr
		}
		c.stops[name] = stop
		t.Cleanup(func() { _ = stop() })
	}
	return c
}

// eventually polls cond every 200 ms for up to timeout.
func (c *cluster) eventually(what string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) {
	c.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok && err == nil, nil
	})
	if err != nil {
		c.t.Fatalf("%s: not within %s (last error: %v)", what, timeout, last)
	}
}

func (c *cluster) pod(ctx context.Context, name string) (*corev1.Pod, error) {
	return c.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// netserverPod is a netserver pod the scheduler binds to node (through a
// hostname nodeSelector), ready by httpGet /readyz.
func netserverPod(name, node string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": node},
			TerminationGracePeriodSeconds: ptr.To[int64](20),
			Containers: []corev1.Container{{
				Name: "netserver", Image: "proxyproof/netserver:1.0", Args: args,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}},
					PeriodSeconds: 1, FailureThreshold: 1,
				},
			}},
		},
	}
}

func (c *cluster) create(p *corev1.Pod) *corev1.Pod {
	c.t.Helper()
	created, err := c.client.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("create pod %s: %v", p.Name, err)
	}
	return created
}

// waitReady waits for pod name to be Running and Ready, and returns it.
func (c *cluster) waitReady(name string) *corev1.Pod {
	c.t.Helper()
	var pod *corev1.Pod
	c.eventually("pod "+name+" Running and Ready", time.Minute, func(ctx context.Context) (bool, error) {
		p, err := c.pod(ctx, name)
		if err != nil {
			return false, err
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning && podReady(p), nil
	})
	return pod
}

func (c *cluster) node(name string) *corev1.Node {
	c.t.Helper()
	n, err := c.client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

func inCIDR(t *testing.T, ip, cidr string) bool {
	t.Helper()
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatalf("podCIDR %q: %v", cidr, err)
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && p.Contains(a)
}

// linkExists reports whether interface name exists in namespace ns.
func linkExists(t *testing.T, ns, name string) bool {
	t.Helper()
	return exec.Command("ip", "-n", ns, "link", "show", name).Run() == nil
}

func routes(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "route", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s route: %v: %s", ns, err, out)
	}
	return string(out)
}

func ipamHolds(t *testing.T, stateDir string, uid string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "ipam.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Pods map[string]json.RawMessage `json:"pods"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	_, ok := m.Pods[uid]
	return ok
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
