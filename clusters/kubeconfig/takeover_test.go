package kubeconfig

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/clusters"
)

// kubeadmKubeProxy is kube-proxy's DaemonSet and ConfigMap as kubeadm
// (and so kind) deploys them, trimmed to what the take-over reads.
func kubeadmKubeProxy() (*appsv1.DaemonSet, *corev1.ConfigMap) {
	labels := map[string]string{"k8s-app": "kube-proxy"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: metav1.NamespaceSystem, Labels: labels,
			Annotations: map[string]string{"deprecated.daemonset.template.generation": "1"}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: "kube-proxy", PriorityClassName: "system-node-critical", HostNetwork: true,
					NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
					Tolerations:  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers: []corev1.Container{{
						Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:v1.34.4",
						Command: []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "kube-proxy", MountPath: "/var/lib/kube-proxy"},
							{Name: "xtables-lock", MountPath: "/run/xtables.lock"},
						},
						SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
					}},
					Volumes: []corev1.Volume{
						{Name: "kube-proxy", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-proxy"}}}},
						{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/xtables.lock"}}},
					},
				},
			},
		},
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: metav1.NamespaceSystem},
		Data: map[string]string{
			"config.conf":     "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\nclusterCIDR: 10.244.0.0/16\nclientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\nconntrack:\n  maxPerCore: 0\n",
			"kubeconfig.conf": "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://cp:6443\n  name: default\n",
		},
	}
	return ds, cm
}

func TestMovingKubeProxyAsideKeepsItOffTakenNodesOnlyAndGivesBackTheSameDaemonSet(t *testing.T) {
	plain, _ := kubeadmKubeProxy()
	withAffinity := plain.DeepCopy()
	withAffinity.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}},
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "pool", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}},
		}},
	}}
	for name, ds := range map[string]*appsv1.DaemonSet{"no affinity (kubeadm's)": plain, "an affinity of two ORed terms": withAffinity} {
		t.Run(name, func(t *testing.T) {
			aside := movedAside(ds)
			terms := aside.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			for i, term := range terms {
				if !slices.ContainsFunc(term.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool {
					return r.Key == LabelTakenOver && r.Operator == corev1.NodeSelectorOpDoesNotExist
				}) {
					t.Errorf("term %d %v does not exclude the taken nodes: kube-proxy would stay on them through that term", i, term)
				}
			}
			if aside.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
				t.Errorf("update strategy %q while aside: want OnDelete, so the changed template restarts kube-proxy on no other node", aside.Spec.UpdateStrategy.Type)
			}
			if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType || len(terms) == 0 {
				t.Fatal("movedAside changed its argument")
			}
			rec := takeOverRecord{Run: "r", Affinity: ds.Spec.Template.Spec.Affinity, Strategy: ds.Spec.UpdateStrategy}
			b, _ := json.Marshal(rec)
			aside.Annotations[AnnotationTakeOver] = string(b)
			got, err := recordOf(aside)
			if err != nil || got == nil {
				t.Fatalf("recordOf = %v, %v", got, err)
			}
			back := givenBack(aside, *got)
			if !reflect.DeepEqual(back.Spec, ds.Spec) {
				t.Errorf("given back:\n%+v\nwant as found:\n%+v", back.Spec, ds.Spec)
			}
			if !reflect.DeepEqual(back.Annotations, ds.Annotations) {
				t.Errorf("annotations given back %v, want %v", back.Annotations, ds.Annotations)
			}
		})
	}
}

func TestTheRunsProxierIsTheClustersKubeProxyPodInTheChosenMode(t *testing.T) {
	kp, cm := kubeadmKubeProxy()
	for _, proxier := range []string{clusters.ProxierOurs, clusters.ProxierKubeProxy} {
		t.Run(proxier, func(t *testing.T) {
			ds, conf, err := proxierObjects(kp, cm, "run1", "proxyproof-run1", proxier, clusters.ModeNFTables, clusters.ModeIPTables, "proxyproof/proxier:dev")
			if err != nil {
				t.Fatal(err)
			}
			pod := ds.Spec.Template.Spec
			c := pod.Containers[0]
			wantImage, wantBin := kp.Spec.Template.Spec.Containers[0].Image, "/usr/local/bin/kube-proxy"
			if proxier == clusters.ProxierOurs {
				wantImage, wantBin = "proxyproof/proxier:dev", ourBinary
			}
			if c.Image != wantImage || c.Command[0] != wantBin {
				t.Errorf("runs %s %s, want %s %s", c.Image, c.Command[0], wantImage, wantBin)
			}
			wantFlags := kp.Spec.Template.Spec.Containers[0].Command[1:]
			if proxier == clusters.ProxierOurs {
				// ours removes kube-proxy's iptables rules only when told
				wantFlags = append(slices.Clone(wantFlags), "--migrate-from=iptables")
			}
			if !reflect.DeepEqual(c.Command[1:], wantFlags) {
				t.Errorf("flags %q, want %q", c.Command[1:], wantFlags)
			}
			if ds.Namespace != "proxyproof-run1" || ds.Labels[clusters.LabelRun] != "run1" || pod.ServiceAccountName != takeOverName {
				t.Errorf("daemonset %s/%s labels %v account %q: want it in the run's namespace, labelled for the run, under the run's account", ds.Namespace, ds.Name, ds.Labels, pod.ServiceAccountName)
			}
			if !reflect.DeepEqual(pod.NodeSelector, map[string]string{LabelTakenOver: "run1"}) || pod.Affinity != nil {
				t.Errorf("node selector %v affinity %v: want the taken nodes only", pod.NodeSelector, pod.Affinity)
			}
			var got map[string]any
			if err := yaml.Unmarshal([]byte(conf.Data["config.conf"]), &got); err != nil {
				t.Fatal(err)
			}
			if got["mode"] != clusters.ModeNFTables || got["clusterCIDR"] != "10.244.0.0/16" {
				t.Errorf("configuration %v: want kube-proxy's with mode nftables", got)
			}
			if conf.Data["kubeconfig.conf"] != cm.Data["kubeconfig.conf"] {
				t.Error("kube-proxy's kubeconfig.conf was not carried over: the proxier would not find the API server")
			}
			mounted := false
			for _, v := range pod.Volumes {
				mounted = mounted || (v.ConfigMap != nil && v.ConfigMap.Name == conf.Name)
			}
			if !mounted {
				t.Errorf("volumes %v do not mount the run's configmap %s", pod.Volumes, conf.Name)
			}
		})
	}
	t.Run("flags alone: --proxy-mode replaced", func(t *testing.T) {
		flagsOnly := kp.DeepCopy()
		flagsOnly.Spec.Template.Spec.Containers[0].Command = []string{"/usr/local/bin/kube-proxy", "--proxy-mode=iptables", "--kubeconfig=/k"}
		ds, conf, err := proxierObjects(flagsOnly, nil, "r", "ns", clusters.ProxierOurs, clusters.ModeIPVS, clusters.ModeIPVS, "img")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{ourBinary, "--kubeconfig=/k", "--proxy-mode=ipvs"}; !reflect.DeepEqual(ds.Spec.Template.Spec.Containers[0].Command, want) || conf != nil {
			t.Errorf("command %q (configmap %v), want %q and none", ds.Spec.Template.Spec.Containers[0].Command, conf, want)
		}
	})
	t.Run("a configuration the DaemonSet names but the cluster lacks is named", func(t *testing.T) {
		_, _, err := proxierObjects(kp, nil, "r", "ns", clusters.ProxierOurs, clusters.ModeIPVS, "", "img")
		if err == nil || !strings.Contains(err.Error(), "configmap kube-proxy") {
			t.Errorf("err %v, want the missing configmap named", err)
		}
	})
}

// takenOverState is a fake cluster as run r's take-over leaves it on two
// of three nodes: kube-proxy aside with the record, its pods back on
// every node (as the DaemonSet controller will make them once given
// back), the nodes labelled, the binding, the run's proxier DaemonSet.
func takenOverState(t *testing.T, run, holder string) (*fake.Clientset, *appsv1.DaemonSet) {
	t.Helper()
	kp, cm := kubeadmKubeProxy()
	rec := takeOverRecord{Run: run, Holder: holder, Affinity: kp.Spec.Template.Spec.Affinity, Strategy: kp.Spec.UpdateStrategy}
	b, _ := json.Marshal(rec)
	aside := movedAside(kp)
	aside.Annotations[AnnotationTakeOver] = string(b)
	objs := []runtime.Object{aside, cm,
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: bindingName(run), Labels: clusters.OwnedLabels(run)}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: takeOverName, Namespace: suiteNamespace(run)}},
	}
	for i, n := range []string{"n1", "n2", "n3"} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{}}}
		if i < 2 {
			node.Labels[LabelTakenOver] = run
		}
		objs = append(objs, node, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-" + n, Namespace: metav1.NamespaceSystem, Labels: kp.Spec.Selector.MatchLabels},
			Spec:       corev1.PodSpec{NodeName: n},
			Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		})
	}
	return fake.NewClientset(objs...), kp
}

func TestGivingBackRestoresKubeProxyUnlabelsTheNodesAndRemovesTheRunsObjects(t *testing.T) {
	client, found := takenOverState(t, "r1", holder())
	ctx := context.Background()
	var cleaned []string
	rec, err := giveBack(ctx, client, "r1", func(_ context.Context, n string) error { cleaned = append(cleaned, n); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil || rec.Run != "r1" {
		t.Fatalf("record %v, want run r1's", rec)
	}
	ds, err := client.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ds.Spec, found.Spec) || !reflect.DeepEqual(ds.Annotations, found.Annotations) {
		t.Errorf("kube-proxy given back as\n%+v %v\nwant as found\n%+v %v", ds.Spec, ds.Annotations, found.Spec, found.Annotations)
	}
	if !reflect.DeepEqual(cleaned, []string{"n1", "n2"}) {
		t.Errorf("cleaned nodes %v, want the taken n1, n2", cleaned)
	}
	nodes, _ := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelTakenOver})
	if len(nodes.Items) != 0 {
		t.Errorf("%d nodes still labelled %s", len(nodes.Items), LabelTakenOver)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Get(ctx, bindingName("r1"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("binding %s: %v, want it gone", bindingName("r1"), err)
	}
	if _, err := client.AppsV1().DaemonSets(suiteNamespace("r1")).Get(ctx, takeOverName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the run's proxier: %v, want it gone", err)
	}
}

func TestADeadRunsTakeOverIsGivenBackByTheNextRunALiveOneIsNot(t *testing.T) {
	ctx := context.Background()
	host, _ := os.Hostname()
	dead, _ := takenOverState(t, "gone", host+"/999999999/1") // no such process here
	if _, err := cleanLeftovers(ctx, dead, false); err != nil {
		t.Fatal(err)
	}
	ds, _ := dead.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(ctx, "kube-proxy", metav1.GetOptions{})
	if _, ok := ds.Annotations[AnnotationTakeOver]; ok || ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		t.Errorf("a dead run's take-over was not given back: annotations %v strategy %s", ds.Annotations, ds.Spec.UpdateStrategy.Type)
	}

	live, _ := takenOverState(t, "going", holder())
	if _, err := cleanLeftovers(ctx, live, false); err != nil {
		t.Fatal(err)
	}
	ds, _ = live.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(ctx, "kube-proxy", metav1.GetOptions{})
	if _, ok := ds.Annotations[AnnotationTakeOver]; !ok {
		t.Error("a live run's take-over was given back under it")
	}
	c := &Cluster{name: "next", client: live, ns: suiteNamespace("next")}
	err := c.takeOverNodes(ctx, clusters.ProxierOurs, clusters.ModeNFTables, "img", nil)
	if err == nil || !strings.Contains(err.Error(), "already moved aside by run going") {
		t.Errorf("a second take-over: %v, want it refused naming the run that holds it", err)
	}
}

func TestNoKubeProxyDaemonSetIsRefusedNamingWhatToDo(t *testing.T) {
	c := &Cluster{name: "r", client: fake.NewClientset(), ns: suiteNamespace("r")}
	err := c.takeOverNodes(context.Background(), clusters.ProxierOurs, clusters.ModeNFTables, "img", nil)
	if err == nil || !strings.Contains(err.Error(), kubeProxySelector) || !strings.Contains(err.Error(), "PROXIER=existing") {
		t.Errorf("err %v, want the label looked for and PROXIER=existing named", err)
	}
}
