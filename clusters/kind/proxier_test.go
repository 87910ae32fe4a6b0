package kind

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/proxier/config"
)

func TestMixedModesGetOneDaemonSetEachSelectingOnlyTheirNodes(t *testing.T) {
	objs, err := proxierFor(clusters.ProxierOurs, []string{"iptables", "nftables", "iptables"}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.DaemonSets) != 2 || len(objs.ConfigMaps) != 2 {
		t.Fatalf("%d daemonsets and %d configmaps, want 2 of each (one per mode)", len(objs.DaemonSets), len(objs.ConfigMaps))
	}
	for i, mode := range []string{"iptables", "nftables"} {
		ds := objs.DaemonSets[i]
		if ds.Name != "proxyproof-proxier-"+mode {
			t.Errorf("daemonset %s, want proxyproof-proxier-%s", ds.Name, mode)
		}
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
			t.Errorf("daemonset %s: selector %v does not select its own pods %v", ds.Name, sel, ds.Spec.Template.Labels)
		}
		other := objs.DaemonSets[1-i]
		if sel.Matches(labels.Set(other.Spec.Template.Labels)) {
			t.Errorf("daemonset %s also selects %s's pods: the two would fight over them", ds.Name, other.Name)
		}
		if got := ds.Spec.Template.Spec.NodeSelector[LabelMode]; got != mode {
			t.Errorf("daemonset %s runs on nodes labelled %s=%q, want %q", ds.Name, LabelMode, got, mode)
		}
		if got := configMapOf(ds); got != objs.ConfigMaps[i].Name {
			t.Errorf("daemonset %s mounts configmap %q, want %q", ds.Name, got, objs.ConfigMaps[i].Name)
		}
		cfg := proxierConfig(t, objs.ConfigMaps[i])
		if string(cfg.Mode) != mode || cfg.ClusterCIDR != PodSubnet || cfg.Conntrack.MaxPerCore == nil || *cfg.Conntrack.MaxPerCore != 0 {
			t.Errorf("configmap %s: mode %q clusterCIDR %q maxPerCore %v, want %s, %s, 0", objs.ConfigMaps[i].Name, cfg.Mode, cfg.ClusterCIDR, cfg.Conntrack.MaxPerCore, mode, PodSubnet)
		}
	}
}

func configMapOf(ds *appsv1.DaemonSet) string {
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			return v.ConfigMap.Name
		}
	}
	return ""
}

// proxierConfig reads a ConfigMap's config.conf as the proxier does.
func proxierConfig(t *testing.T, cm *corev1.ConfigMap) *v1alpha1.KubeProxyConfiguration {
	t.Helper()
	cfg, err := config.Decode([]byte(cm.Data[proxierConfigKey]))
	if err != nil {
		t.Fatalf("configmap %s: the proxier cannot read %s: %v", cm.Name, proxierConfigKey, err)
	}
	if err := config.Validate(cfg); err != nil {
		t.Fatalf("configmap %s: the proxier refuses %s: %v", cm.Name, proxierConfigKey, err)
	}
	return cfg
}

func TestTheProxierReachesTheAPIServerDirectlyNotThroughTheServiceItProgrammes(t *testing.T) {
	objs, err := proxierFor(clusters.ProxierOurs, []string{"iptables"}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	c := objs.DaemonSets[0].Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "172.18.0.2" || env["KUBERNETES_SERVICE_PORT"] != "6443" {
		t.Errorf("env %v, want KUBERNETES_SERVICE_HOST=172.18.0.2 and KUBERNETES_SERVICE_PORT=6443", env)
	}
	if c.Image != ProxierImage || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %s (pull %s), want %s never pulled", c.Image, c.ImagePullPolicy, ProxierImage)
	}
}

func TestKubeProxyRunsFromItsImageWithTheSameFlagsAndConfig(t *testing.T) {
	ours, err := proxierFor(clusters.ProxierOurs, []string{"nftables"}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := proxierFor(clusters.ProxierKubeProxy, []string{"nftables"}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	ds := kp.DaemonSets[0]
	c := ds.Spec.Template.Spec.Containers[0]
	if ds.Name != "kube-proxy-nftables" || c.Image != KubeProxyImage || c.Command[0] != kubeProxyBinary {
		t.Errorf("daemonset %s runs %s from %s, want kube-proxy-nftables running %s from %s", ds.Name, c.Command[0], c.Image, kubeProxyBinary, KubeProxyImage)
	}
	if diff := cmp.Diff(ours.DaemonSets[0].Spec.Template.Spec.Containers[0].Command[1:], c.Command[1:]); diff != "" {
		t.Errorf("kube-proxy's flags differ from ours (-ours +kube-proxy):\n%s", diff)
	}
	if diff := cmp.Diff(ours.ConfigMaps[0].Data, kp.ConfigMaps[0].Data); diff != "" {
		t.Errorf("kube-proxy's config differs from ours (-ours +kube-proxy):\n%s", diff)
	}
}

// RBAC no wider than kube-proxy's: the shipped binding to the built-in
// system:node-proxier role, nothing else.
func TestTheProxiersRBACIsKubeProxysRole(t *testing.T) {
	objs, err := proxierFor(clusters.ProxierKubeProxy, []string{"iptables", "nftables"}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	b := objs.Binding
	if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != "system:node-proxier" {
		t.Errorf("binding to %s %s, want ClusterRole system:node-proxier", b.RoleRef.Kind, b.RoleRef.Name)
	}
	if len(b.Subjects) != 1 || b.Subjects[0].Name != objs.ServiceAccount.Name || b.Subjects[0].Namespace != objs.ServiceAccount.Namespace {
		t.Errorf("binding subjects %+v, want only %s/%s", b.Subjects, objs.ServiceAccount.Namespace, objs.ServiceAccount.Name)
	}
	for _, ds := range objs.DaemonSets {
		if ds.Spec.Template.Spec.ServiceAccountName != objs.ServiceAccount.Name {
			t.Errorf("daemonset %s runs as %q, want %s", ds.Name, ds.Spec.Template.Spec.ServiceAccountName, objs.ServiceAccount.Name)
		}
	}
}

// The shipped ConfigMap stays the source: fields we do not set pass
// through unchanged.
func TestAModesConfigKeepsTheShippedSettings(t *testing.T) {
	_, shippedCM, _, err := shipped()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := proxierFor(clusters.ProxierOurs, []string{"nftables"}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := yaml.Unmarshal([]byte(shippedCM.Data[proxierConfigKey]), &before); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(objs.ConfigMaps[0].Data[proxierConfigKey]), &after); err != nil {
		t.Fatal(err)
	}
	var changed []string
	for k := range before {
		if !cmp.Equal(before[k], after[k]) {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	if want := []string{"conntrack", "mode"}; !slices.Equal(changed, want) {
		t.Errorf("changed keys %v, want only %v", changed, want)
	}
	if !strings.Contains(objs.ConfigMaps[0].Data[proxierConfigKey], "healthzBindAddress") {
		t.Error("shipped healthzBindAddress lost")
	}
}
