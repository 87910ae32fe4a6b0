package kubeconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
)

// foreignCluster makes a kind cluster as kind makes it (kubeadm's own
// kube-proxy, iptables mode) through the kind provider, on its internal
// network: a cluster this provider did not make. It skips, saying why,
// where no kind cluster can be made here.
func foreignCluster(t *testing.T) *kind.Cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make the kind cluster under test (a host firewall rule per cluster network)")
	}
	kp := kind.NewProvider()
	spec := clusters.Spec{Name: fmt.Sprintf("kcfg-%d", os.Getpid()%100000), Proxier: kind.ProxierKubeadm,
		Nodes: []clusters.NodeSpec{{Mode: clusters.ModeIPTables}, {Mode: clusters.ModeIPTables}, {Mode: clusters.ModeIPTables}}}
	if err := kp.Check(spec); err != nil {
		if strings.Contains(err.Error(), "make kind-images") || strings.Contains(err.Error(), "Docker engine") {
			t.Skipf("no kind cluster can be made here: %v", err)
		}
		t.Fatal(err)
	}
	c, err := kp.Create(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	kc := c.(*kind.Cluster)
	t.Cleanup(func() {
		if err := kc.Destroy(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return kc
}

// TestAKindClusterItDidNotMake runs the suite's ClusterIP specs through
// make e2e's runner against the existing kube-proxy, finding each node's
// mode, and checks that the cluster is left as it was found; and that a
// user who may not create namespaces is refused first.
func TestAKindClusterItDidNotMake(t *testing.T) {
	kc := foreignCluster(t)
	ctx := context.Background()
	cfg, err := kc.RestConfig()
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	t.Run("a user who may not create namespaces is refused, the permission named", func(t *testing.T) {
		restricted := restrictedKubeconfig(ctx, t, client, kc.Kubeconfig())
		before := snapshot(ctx, t, client)
		err := NewProvider().Check(clusters.Spec{Name: "r", Kubeconfig: restricted})
		if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "create namespaces") {
			t.Fatalf("Check: %v, want %v naming create namespaces", err, ErrForbidden)
		}
		if after := snapshot(ctx, t, client); after != before {
			t.Errorf("the refusal changed the cluster:\nbefore %s\nafter  %s", before, after)
		}
	})
	before := snapshot(ctx, t, client)
	runDir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command("go", "run", "./suites/framework/cmd/e2e", "--provider", ProviderName, "--kubeconfig", kc.Kubeconfig(),
		"--mode", "", "--proxier", "", "--run-dir", runDir, "--args", "--label-filter=feature:clusterip")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make e2e PROVIDER=kubeconfig: %v\n%s", err, out)
	}
	env := readEnvironment(t, filepath.Join(runDir, clusters.ModeExisting, "environment.json"))
	if len(env.Nodes) != 3 {
		t.Errorf("environment records nodes %v, want the cluster's 3", env.Nodes)
	}
	for n, m := range env.Nodes {
		if m != clusters.ModeIPTables { // kind's default kube-proxy mode, found on the node
			t.Errorf("node %s: mode %q found, want iptables (kind's kube-proxy default)", n, m)
		}
	}
	if after := snapshot(ctx, t, client); after != before {
		t.Errorf("the run did not leave the cluster as it found it:\nbefore %s\nafter  %s", before, after)
	}

	t.Run("TAKE_OVER=1: our proxier in nftables on the tested nodes, kube-proxy given back as found", func(t *testing.T) {
		// One node the run does not test (a taint its pods do not
		// tolerate; kube-proxy tolerates everything): its kube-proxy pod
		// must never be restarted.
		untested := untest(ctx, t, client)
		before := asFound(ctx, t, client)
		runDir := filepath.Join(t.TempDir(), "take-over")
		cmd := exec.Command("go", "run", "./suites/framework/cmd/e2e", "--provider", ProviderName, "--kubeconfig", kc.Kubeconfig(),
			"--mode", clusters.ModeNFTables, "--proxier", clusters.ProxierOurs, "--take-over", "1", "--run-dir", runDir, "--args", "--label-filter=feature:clusterip")
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make e2e PROVIDER=kubeconfig PROXIER=ours MODE=nftables TAKE_OVER=1: %v\n%s", err, out)
		}
		env := readEnvironment(t, filepath.Join(runDir, clusters.ModeNFTables, "environment.json"))
		if _, ok := env.Nodes[untested]; ok || len(env.Nodes) != 2 {
			t.Errorf("environment records nodes %v, want the 2 not tainted (not %s)", env.Nodes, untested)
		}
		for n, m := range env.Nodes {
			if m != clusters.ModeNFTables {
				t.Errorf("node %s: mode %q found during the run, want nftables (our proxier's)", n, m)
			}
		}
		if after := asFound(ctx, t, client); after != before {
			t.Errorf("the take-over did not give the cluster back as it found it:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// untest taints one node NoSchedule for the rest of the test, so the
// suite leaves it out; it returns its name.
func untest(ctx context.Context, t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) < 3 {
		t.Fatalf("nodes: %v (%d), want 3", err, len(nodes.Items))
	}
	n := nodes.Items[0]
	taint := corev1.Taint{Key: "proxyproof.dev/untested", Effect: corev1.TaintEffectNoSchedule}
	n.Spec.Taints = append(n.Spec.Taints, taint)
	if _, err := client.CoreV1().Nodes().Update(ctx, &n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		m.Spec.Taints = slices.DeleteFunc(m.Spec.Taints, func(x corev1.Taint) bool { return x.Key == taint.Key })
		if _, err := client.CoreV1().Nodes().Update(ctx, m, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	})
	return n.Name
}

// asFound is what a take-over must give back: the namespaces, the node
// labels, the kube-proxy DaemonSet's annotations, update strategy and pod
// template, and the kube-proxy pod of every node the run did not test
// (same pod: never restarted). Its generation moves: the template was
// changed and changed back.
func asFound(ctx context.Context, t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	names := namespaces(ctx, t, client)
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	tested := map[string]bool{}
	for _, n := range nodes.Items {
		labels = append(labels, fmt.Sprintf("%s=%v", n.Name, n.Labels))
		tested[n.Name] = schedulable(n)
	}
	ds, tmpl := kubeProxy(ctx, t, client)
	pods, err := client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: kubeProxySelector})
	if err != nil {
		t.Fatal(err)
	}
	var untouched []string
	for _, p := range pods.Items {
		if !tested[p.Spec.NodeName] {
			untouched = append(untouched, p.Spec.NodeName+"/"+string(p.UID))
		}
	}
	slices.Sort(untouched)
	if len(untouched) == 0 {
		t.Fatal("no kube-proxy pod on a node the run does not test: nothing shows that the take-over left other nodes alone")
	}
	// The API server copies the generation into this annotation on every
	// template change: it moves with the generation.
	annotations := maps.Clone(ds.Annotations)
	delete(annotations, "deprecated.daemonset.template.generation")
	return fmt.Sprintf("namespaces %v; nodes %v; kube-proxy annotations %v strategy %+v template %s; kube-proxy pods on untested nodes %v",
		names, labels, annotations, ds.Spec.UpdateStrategy, tmpl, untouched)
}

type environment struct {
	Nodes map[string]string `json:"nodes"`
}

func readEnvironment(t *testing.T, path string) environment {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env environment
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	return env
}

// snapshot is what a run must leave as found: the namespaces, and the
// kube-proxy DaemonSet's generation, annotations and pod template.
func snapshot(ctx context.Context, t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	names := namespaces(ctx, t, client)
	ds, tmpl := kubeProxy(ctx, t, client)
	return fmt.Sprintf("namespaces %v; kube-proxy generation %d annotations %v template %s", names, ds.Generation, ds.Annotations, tmpl)
}

// restrictedKubeconfig is a kubeconfig for a service account that may
// read nodes and nothing else; the account goes when the test ends.
func restrictedKubeconfig(ctx context.Context, t *testing.T, client kubernetes.Interface, admin string) string {
	t.Helper()
	const name = "kcfg-restricted"
	sa, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: name}}}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
		_ = client.CoreV1().ServiceAccounts("default").Delete(ctx, name, metav1.DeleteOptions{})
	})
	tok, err := client.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range raw.AuthInfos {
		u.ClientCertificateData, u.ClientKeyData, u.ClientCertificate, u.ClientKey = nil, nil, "", ""
		u.Token = tok.Status.Token
	}
	path := filepath.Join(t.TempDir(), "restricted.kubeconfig")
	if err := clientcmd.WriteToFile(*raw, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// namespaces are the cluster's namespaces by name, sorted.
func namespaces(ctx context.Context, t *testing.T, client kubernetes.Interface) []string {
	t.Helper()
	nss, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range nss.Items {
		names = append(names, ns.Name)
	}
	slices.Sort(names)
	return names
}

// kubeProxy is kube-proxy's DaemonSet and its pod template as JSON.
func kubeProxy(ctx context.Context, t *testing.T, client kubernetes.Interface) (*appsv1.DaemonSet, []byte) {
	t.Helper()
	ds, err := client.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := json.Marshal(ds.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	return ds, tmpl
}
