package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

var buildOnce sync.Once

// binaries returns the pinned control plane, building it first when the
// cache lacks it: CI runs on fresh machines, so a skip would hide the test.
func binaries(t *testing.T) Paths {
	t.Helper()
	buildOnce.Do(func() {
		if _, err := Binaries(""); err == nil {
			return
		}
		// go test runs in the package directory.
		script, err := filepath.Abs(filepath.Join("..", "..", "..", "hack", "controlplane", "build.sh"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("control plane binaries missing; running %s (5-15 minutes on a cold Go cache)", script)
		if d, ok := t.Deadline(); ok && time.Until(d) < 20*time.Minute {
			t.Logf("go test -timeout leaves %s; a cold build may need more (make test uses -timeout 30m)", time.Until(d).Round(time.Second))
		}
		began := time.Now()
		var stderr bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stderr = &stderr
		if out, err := cmd.Output(); err != nil {
			t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", script, err, out, stderr.String())
		}
		t.Logf("cold build of the control plane took %s:\n%s", time.Since(began).Round(time.Second), stderr.String())
	})
	p, err := Binaries("")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startForTest(t *testing.T, name string) *ControlPlane {
	t.Helper()
	binaries(t)
	cp, err := tryStart(t, name)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// tryStart starts a control plane stopped at the end of t; safe to call
// from any goroutine once binaries(t) has run.
func tryStart(t *testing.T, name string) (*ControlPlane, error) {
	bins, err := Binaries("")
	if err != nil {
		return nil, err
	}
	began := time.Now()
	cp, err := Start(context.Background(), Spec{Name: name, Dir: filepath.Join(t.TempDir(), "controlplane"), Binaries: &bins})
	if err != nil {
		return nil, err
	}
	t.Logf("control plane %s: start to ready %s, server %s", name, time.Since(began).Round(10*time.Millisecond), cp.Server)
	t.Cleanup(func() { _ = cp.Stop() })
	return cp, nil
}

func clientFor(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond every 250 ms for up to a minute (2 busy cores).
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", what, err, last)
	}
}

func TestControlPlaneRunsServicesNodesAndDeploymentsThenStopsWithoutTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane (etcd, kube-apiserver, controller-manager, scheduler); skipped in -short")
	}
	cp := startForTest(t, "cp-test")
	ctx := context.Background()
	admin := clientFor(t, cp.Kubeconfig)

	// Every component listens on loopback only, and we remember the ports
	// to prove they are closed after Stop.
	var ports []netip.AddrPort
	var rss []string
	for _, c := range cp.Components() {
		ls := listeners(t, c.PID)
		if len(ls) == 0 {
			t.Errorf("%s (pid %d) listens on no TCP port", c.Name, c.PID)
		}
		for _, l := range ls {
			if !l.Addr().IsLoopback() {
				t.Errorf("%s listens on %s: not loopback (sealed-cluster rule)", c.Name, l)
			}
		}
		ports = append(ports, ls...)
		rss = append(rss, fmt.Sprintf("%s %d MiB", c.Name, rssKiB(t, c.PID)/1024))
	}
	t.Logf("listening: %v", ports)

	t.Run("a Service gets a ClusterIP from the service range", func(t *testing.T) {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		svc, err := admin.CoreV1().Services("web").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !netip.MustParsePrefix(cp.Spec.ServiceCIDR).Contains(ip) {
			t.Fatalf("service web/web ClusterIP %q not in %s", svc.Spec.ClusterIP, cp.Spec.ServiceCIDR)
		}
		k, err := admin.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil || k.Spec.ClusterIP != "10.96.0.1" {
			t.Errorf("service default/kubernetes ClusterIP = %v (%v), want 10.96.0.1 (in the serving certificate)", k.Spec.ClusterIP, err)
		}
	})

	t.Run("a node registering itself gets a podCIDR from the cluster range", func(t *testing.T) {
		path, err := cp.NodeKubeconfig("node-a")
		if err != nil {
			t.Fatal(err)
		}
		node := clientFor(t, path)
		if _, err := node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("node-a registering itself: %v", err)
		}
		// The Node authorizer confines a node to itself.
		_, err = node.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("node-a creating node-b: err = %v, want Forbidden", err)
		}
		var cidr string
		eventually(t, "node-a podCIDR", func(ctx context.Context) (bool, error) {
			n, err := admin.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			cidr = n.Spec.PodCIDR
			return cidr != "", nil
		})
		p, err := netip.ParsePrefix(cidr)
		if err != nil || p.Bits() != 24 || !netip.MustParsePrefix("10.244.0.0/16").Overlaps(p) {
			t.Errorf("node-a podCIDR %q: want a /24 inside 10.244.0.0/16", cidr)
		}
	})

	t.Run("a Deployment gets its ReplicaSet and Pods, which the scheduler finds unschedulable", func(t *testing.T) {
		labelsWeb := map[string]string{"app": "web"}
		_, err := admin.AppsV1().Deployments("web").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labelsWeb},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labelsWeb},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "proxyproof/agnhost"}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		selector := labels.SelectorFromSet(labelsWeb).String()
		eventually(t, "replicaset of deployment web/web", func(ctx context.Context) (bool, error) {
			rs, err := admin.AppsV1().ReplicaSets("web").List(ctx, metav1.ListOptions{LabelSelector: selector})
			return err == nil && len(rs.Items) == 1, err
		})
		// The pods exist (service account credentials of the controllers
		// work) and the scheduler has looked at them: no node can take them.
		eventually(t, "two unschedulable pods of deployment web/web", func(ctx context.Context) (bool, error) {
			pods, err := admin.CoreV1().Pods("web").List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil || len(pods.Items) != 2 {
				return false, err
			}
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodPending || !unschedulable(p) {
					return false, nil
				}
			}
			return true, nil
		})
	})

	for _, c := range cp.Components() {
		rss = append(rss, fmt.Sprintf("%s %d MiB", c.Name, rssKiB(t, c.PID)/1024))
	}
	n := len(cp.Components())
	t.Logf("RSS at ready: %s", strings.Join(rss[:n], ", "))
	t.Logf("RSS after the workload: %s", strings.Join(rss[n:], ", "))

	comps := cp.Components()
	began := time.Now()
	if err := cp.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("stop took %s", time.Since(began).Round(10*time.Millisecond))
	for _, c := range comps {
		if Alive(c.PID) {
			t.Errorf("%s (pid %d) still runs after Stop", c.Name, c.PID)
		}
	}
	still := map[netip.AddrPort]bool{}
	for _, s := range listening(t, "/proc/self/net") {
		still[s.addr] = true
	}
	for _, p := range ports {
		if still[p] {
			t.Errorf("%s still listening after Stop", p)
		}
	}
	if pids, _ := filepath.Glob(filepath.Join(cp.Spec.Dir, "pids", "*")); len(pids) > 0 {
		t.Errorf("pid files left after Stop: %v", pids)
	}
}

func unschedulable(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

func TestTwoControlPlanesRunSideBySideWithoutSharingState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two real control planes; skipped in -short")
	}
	binaries(t)
	var a, b *ControlPlane
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = tryStart(t, "cp-a") }()
	go func() { defer wg.Done(); b, errB = tryStart(t, "cp-b") }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("starting two control planes at once: a: %v; b: %v", errA, errB)
	}
	if a.Server == b.Server || a.EtcdURL == b.EtcdURL {
		t.Fatalf("clusters share an endpoint: %s/%s and %s/%s", a.Server, a.EtcdURL, b.Server, b.EtcdURL)
	}
	ctx := context.Background()
	if _, err := clientFor(t, a.Kubeconfig).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clientFor(t, b.Kubeconfig).CoreV1().Namespaces().Get(ctx, "only-in-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster b sees namespace only-in-a of cluster a: err = %v, want NotFound", err)
	}
	// A's credentials mean nothing to B: each cluster has its own CA.
	cfg, err := clientcmd.BuildConfigFromFlags(b.Server, a.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cross, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cross.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("cluster a's admin kubeconfig works against cluster b; the CAs must differ")
	}
}

func TestStartReportsTheFailingComponentsLog(t *testing.T) {
	bins := binaries(t)
	fake := filepath.Join(t.TempDir(), "kube-apiserver")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'E0101 flag --nonsense: unknown flag' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bins.APIServer = fake
	dir := t.TempDir()
	_, err := Start(context.Background(), Spec{Dir: dir, Binaries: &bins, ReadyTimeout: time.Minute})
	if err == nil {
		t.Fatal("Start with a failing kube-apiserver succeeded")
	}
	for _, want := range []string{"kube-apiserver", "exited", "flag --nonsense: unknown flag"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// The etcd it had started is gone too.
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(dir)) {
			t.Errorf("a process of the failed start still runs: %s: %q", f, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

func TestAControlPlaneThatOutlivesItsCallerIsStoppedThroughItsDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane; skipped in -short")
	}
	bins := binaries(t)
	dir := t.TempDir()
	cp, err := Start(context.Background(), Spec{Name: "kept", Dir: dir, Binaries: &bins, OutliveCaller: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	if _, err := Start(context.Background(), Spec{Name: "again", Dir: dir, Binaries: &bins}); err == nil || !strings.Contains(err.Error(), "still runs there") {
		t.Errorf("second Start in a live dir: err = %v, want a refusal naming the running control plane", err)
	}
	if err := StopDir(dir, 15*time.Second); err != nil {
		t.Fatalf("StopDir: %v", err)
	}
	for _, c := range cp.Components() {
		if Alive(c.PID) {
			t.Errorf("%s (pid %d) still runs after StopDir", c.Name, c.PID)
		}
	}
	if pids, _ := filepath.Glob(filepath.Join(dir, "pids", "*")); len(pids) > 0 {
		t.Errorf("pid files left after StopDir: %v", pids)
	}
}

func TestBuildScriptAnswersAtOnceWhenTheCacheIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the built control plane; skipped in -short")
	}
	binaries(t)
	began := time.Now()
	out, err := exec.Command(filepath.Join("..", "..", "..", "hack", "controlplane", "build.sh")).Output()
	took := time.Since(began)
	if err != nil {
		t.Fatalf("build.sh: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), BinDir(DefaultVersion); got != want {
		t.Errorf("build.sh printed %q, want %q", got, want)
	}
	// Under a second on an idle machine; the bound leaves room for a busy one.
	if took > 5*time.Second {
		t.Errorf("build.sh with a fresh cache took %s; it must not rebuild", took)
	}
	t.Logf("build.sh with a fresh cache: %s", took.Round(time.Millisecond))
}
