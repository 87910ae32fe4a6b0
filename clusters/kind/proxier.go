package kind

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/manifests"
)

// kubeProxyBinary is upstream kube-proxy in KubeProxyImage, where
// upstream's own image has it; it takes the flags our proxier takes.
const kubeProxyBinary = "/usr/local/bin/kube-proxy"

// proxierConfigKey is the ConfigMap key the DaemonSet mounts as its
// --config file.
const proxierConfigKey = "config.conf"

// proxierObjects is what Create applies for the proxier: the shipped
// RBAC as is, and per mode present a ConfigMap and a DaemonSet made from
// the shipped ones.
type proxierObjects struct {
	ServiceAccount *corev1.ServiceAccount
	Binding        *rbacv1.ClusterRoleBinding
	ConfigMaps     []*corev1.ConfigMap
	DaemonSets     []*appsv1.DaemonSet
}

// shipped decodes manifests/proxier with the API's own scheme.
func shipped() (proxierObjects, *corev1.ConfigMap, *appsv1.DaemonSet, error) {
	var objs proxierObjects
	var cm *corev1.ConfigMap
	var ds *appsv1.DaemonSet
	err := fs.WalkDir(manifests.Proxier, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := manifests.Proxier.ReadFile(path)
		if err != nil {
			return err
		}
		docs, err := decodeAll(data)
		if err != nil {
			return fmt.Errorf("manifests/%s: %w", path, err)
		}
		for _, o := range docs {
			switch o := o.(type) {
			case *corev1.ServiceAccount:
				objs.ServiceAccount = o
			case *rbacv1.ClusterRoleBinding:
				objs.Binding = o
			case *corev1.ConfigMap:
				cm = o
			case *appsv1.DaemonSet:
				ds = o
			default:
				return fmt.Errorf("manifests/%s: unexpected %T", path, o)
			}
		}
		return nil
	})
	if err == nil && (objs.ServiceAccount == nil || objs.Binding == nil || cm == nil || ds == nil) {
		err = errors.New("manifests/proxier: want a ServiceAccount, a ClusterRoleBinding, a ConfigMap and a DaemonSet")
	}
	return objs, cm, ds, err
}

func decodeAll(data []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		o, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
}

// proxierFor is the proxier deployment of a cluster whose nodes run
// modes, with the proxier ("ours" or "kube-proxy") reaching the API
// server at apiHost.
func proxierFor(proxier string, modes []string, apiHost string) (proxierObjects, error) {
	objs, cm, ds, err := shipped()
	if err != nil {
		return objs, err
	}
	base, image, err := proxierBase(proxier)
	if err != nil {
		return objs, err
	}
	seen := map[string]bool{}
	for _, mode := range modes {
		if seen[mode] {
			continue
		}
		seen[mode] = true
		c, err := modeConfigMap(cm, base+"-"+mode, mode)
		if err != nil {
			return objs, err
		}
		objs.ConfigMaps = append(objs.ConfigMaps, c)
		objs.DaemonSets = append(objs.DaemonSets, modeDaemonSet(ds, base, mode, image, c.Name, apiHost, proxier))
	}
	return objs, nil
}

// modeConfigMap is the shipped ConfigMap named name with the proxier
// configuration of mode.
func modeConfigMap(shipped *corev1.ConfigMap, name, mode string) (*corev1.ConfigMap, error) {
	var conf map[string]any
	if err := yaml.Unmarshal([]byte(shipped.Data[proxierConfigKey]), &conf); err != nil {
		return nil, fmt.Errorf("configmap %s/%s %s: %w", shipped.Namespace, shipped.Name, proxierConfigKey, err)
	}
	conf["mode"] = mode
	conf["clusterCIDR"] = PodSubnet
	// nf_conntrack_max is the host's, read-only in a node container's
	// namespace: leave it alone, as kind's own kube-proxy config does.
	ct, _ := conf["conntrack"].(map[string]any)
	if ct == nil {
		ct = map[string]any{}
	}
	ct["maxPerCore"] = 0
	conf["conntrack"] = ct
	out, err := yaml.Marshal(conf)
	if err != nil {
		return nil, err
	}
	c := shipped.DeepCopy()
	c.Name = name
	c.Data = map[string]string{proxierConfigKey: string(out)}
	return c, nil
}

// modeDaemonSet is the shipped DaemonSet for the nodes of one mode: its
// own name, selector and ConfigMap, the image of proxier, and the API
// server's address. The proxier is what makes the kubernetes Service's
// ClusterIP work, so it must not reach the API through it (kubeadm's
// kube-proxy uses the control-plane endpoint for the same reason).
func modeDaemonSet(shipped *appsv1.DaemonSet, base, mode, image, configMap, apiHost, proxier string) *appsv1.DaemonSet {
	ds := shipped.DeepCopy()
	ds.Name = base + "-" + mode
	ds.Labels = map[string]string{"k8s-app": base, LabelMode: mode}
	ds.Spec.Selector.MatchLabels = map[string]string{"k8s-app": base, LabelMode: mode}
	ds.Spec.Template.Labels = map[string]string{"k8s-app": base, LabelMode: mode}
	pod := &ds.Spec.Template.Spec
	if pod.NodeSelector == nil {
		pod.NodeSelector = map[string]string{}
	}
	pod.NodeSelector[LabelMode] = mode
	// A node restarted with its own configuration leaves the mode
	// DaemonSets (restart.go).
	pod.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: LabelProxier, Operator: corev1.NodeSelectorOpDoesNotExist}},
		}}},
	}}
	for i := range pod.Volumes {
		if pod.Volumes[i].ConfigMap != nil && pod.Volumes[i].ConfigMap.Name == shipped.Name {
			pod.Volumes[i].ConfigMap.Name = configMap
		}
	}
	c := &pod.Containers[0]
	c.Image = image
	switch {
	case proxier == clusters.ProxierKubeProxy:
		c.Command = append([]string{kubeProxyBinary}, c.Command[1:]...)
	case isPath(proxier):
		c.Command = append([]string{pathBinary}, c.Command[1:]...)
	}
	c.Env = append(slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "KUBERNETES_SERVICE_HOST" || e.Name == "KUBERNETES_SERVICE_PORT"
	}),
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: apiHost},
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: strconv.Itoa(apiServerPort)},
	)
	return ds
}
