package kubeconfig

// The take-over (PROXIER=ours|kube-proxy TAKE_OVER=1) runs the chosen
// proxier in the chosen mode on the tested nodes of a cluster the suite
// did not make, in place of the cluster's own kube-proxy, and puts
// kube-proxy back afterwards.
//
// How kube-proxy is moved aside: the tested nodes get the label
// LabelTakenOver=<run>, and the kube-proxy DaemonSet a required node
// affinity that excludes that label, its update strategy set to OnDelete
// meanwhile. The DaemonSet controller then deletes kube-proxy's pods on
// the tested nodes only (nodes it should no longer run on), while
// OnDelete keeps it from replacing the pods of every other node for the
// changed template. Giving back restores the recorded affinity and
// strategy: the template is the original again, whose revision the other
// nodes' pods still carry, so they are never restarted; only the tested
// nodes get a kube-proxy pod again.
//
// What was changed is recorded on the DaemonSet itself
// (AnnotationTakeOver: the run, its holder process, the original affinity
// and strategy, each node's mode before), so a run that dies is given
// back by the next run or by make cluster-down from the record alone.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/clusters"
)

const (
	// AnnotationTakeOver, on the cluster's kube-proxy DaemonSet, records
	// a take-over (takeOverRecord as JSON) until it is given back.
	AnnotationTakeOver = "proxyproof.dev/take-over"
	// LabelTakenOver marks a node the run's proxier runs on; its value
	// is the run.
	LabelTakenOver = "proxyproof.dev/taken-over"
	// takeOverName names the run's proxier DaemonSet, its ConfigMap and
	// its ServiceAccount, all in the run's own namespace.
	takeOverName = "proxyproof-proxier"
	// kubeProxySelector finds the cluster's kube-proxy as kubeadm (and
	// kind, and most installers after it) deploys it.
	kubeProxySelector = "k8s-app=kube-proxy"
	nodeProxierRole   = "system:node-proxier"
	// ourBinary is our proxier in its image; it takes kube-proxy's flags
	// and configuration file.
	ourBinary    = "/proxier"
	takeOverWait = 3 * time.Minute
)

// takeOverRecord is what a take-over changed, kept on the DaemonSet.
type takeOverRecord struct {
	Run    string `json:"run"`
	Holder string `json:"holder"`
	// Affinity and Strategy are the DaemonSet's before the take-over.
	Affinity *corev1.Affinity               `json:"affinity,omitempty"`
	Strategy appsv1.DaemonSetUpdateStrategy `json:"updateStrategy"`
	// Modes is each taken node's mode before, checked after giving back.
	Modes map[string]string `json:"modes"`
}

// takeOver is a take-over in place: the DaemonSet moved aside and the
// nodes the run's proxier runs on.
type takeOver struct {
	daemonSet string // kube-system/<name> of the cluster's kube-proxy
	rec       takeOverRecord
}

// findKubeProxy is the cluster's kube-proxy DaemonSet.
func findKubeProxy(ctx context.Context, client kubernetes.Interface) (*appsv1.DaemonSet, error) {
	list, err := client.AppsV1().DaemonSets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: kubeProxySelector})
	if err != nil {
		return nil, fmt.Errorf("TAKE_OVER=1: daemonsets in %s: %w", metav1.NamespaceSystem, err)
	}
	switch len(list.Items) {
	case 0:
		return nil, fmt.Errorf("TAKE_OVER=1: no kube-proxy DaemonSet in %s (labelled %s, as kubeadm deploys it): the take-over moves only that aside; test the cluster's own proxier with PROXIER=%s",
			metav1.NamespaceSystem, kubeProxySelector, clusters.ProxierExisting)
	case 1:
		return &list.Items[0], nil
	}
	var names []string
	for _, ds := range list.Items {
		names = append(names, ds.Name)
	}
	return nil, fmt.Errorf("TAKE_OVER=1: %d DaemonSets in %s are labelled %s (%s): the take-over moves one kube-proxy aside; test the cluster's own proxier with PROXIER=%s",
		len(names), metav1.NamespaceSystem, kubeProxySelector, strings.Join(names, ", "), clusters.ProxierExisting)
}

// kubeProxyContainer is the index of the container that runs kube-proxy.
func kubeProxyContainer(ds *appsv1.DaemonSet) (int, error) {
	cs := ds.Spec.Template.Spec.Containers
	for i, c := range cs {
		if c.Name == "kube-proxy" || (len(c.Command) > 0 && path.Base(c.Command[0]) == "kube-proxy") {
			return i, nil
		}
	}
	if len(cs) == 1 {
		return 0, nil
	}
	return 0, fmt.Errorf("TAKE_OVER=1: daemonset %s/%s: no container named kube-proxy or running it among %d", ds.Namespace, ds.Name, len(cs))
}

// configFile is the --config file of container c and the ConfigMap
// volume holding it: its name and the key of the file; all "" when
// kube-proxy runs on flags alone.
func configFile(pod corev1.PodSpec, c corev1.Container) (configMap, key string) {
	var file string
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			file = v
		}
	}
	if file == "" {
		return "", ""
	}
	for _, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/")
		if path.Dir(file) != dir {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				return v.ConfigMap.Name, path.Base(file)
			}
		}
	}
	return "", ""
}

// withMode is the KubeProxyConfiguration conf with its mode set.
func withMode(conf, mode string) (string, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(conf), &m); err != nil {
		return "", err
	}
	if m == nil {
		m = map[string]any{}
	}
	m["mode"] = mode
	out, err := yaml.Marshal(m)
	return string(out), err
}

// withModeFlag is argv with --proxy-mode=mode in place of any it had.
func withModeFlag(argv []string, mode string) []string {
	out := slices.DeleteFunc(slices.Clone(argv), func(a string) bool { return strings.HasPrefix(a, "--proxy-mode=") })
	return append(out, "--proxy-mode="+mode)
}

// movedAside is kube-proxy's DaemonSet kept off the nodes labelled
// LabelTakenOver: the label's absence is added to every required term
// (terms are ORed, so each must carry it), and the update strategy is
// OnDelete (see the package comment above).
func movedAside(ds *appsv1.DaemonSet) *appsv1.DaemonSet {
	out := ds.DeepCopy()
	pod := &out.Spec.Template.Spec
	if pod.Affinity == nil {
		pod.Affinity = &corev1.Affinity{}
	}
	if pod.Affinity.NodeAffinity == nil {
		pod.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := pod.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
	}
	req := na.RequiredDuringSchedulingIgnoredDuringExecution
	if len(req.NodeSelectorTerms) == 0 {
		req.NodeSelectorTerms = []corev1.NodeSelectorTerm{{}}
	}
	notTaken := corev1.NodeSelectorRequirement{Key: LabelTakenOver, Operator: corev1.NodeSelectorOpDoesNotExist}
	for i := range req.NodeSelectorTerms {
		req.NodeSelectorTerms[i].MatchExpressions = append(req.NodeSelectorTerms[i].MatchExpressions, notTaken)
	}
	out.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	return out
}

// recordOf is the take-over recorded on ds, nil for none.
func recordOf(ds *appsv1.DaemonSet) (*takeOverRecord, error) {
	s, ok := ds.Annotations[AnnotationTakeOver]
	if !ok {
		return nil, nil
	}
	var rec takeOverRecord
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: annotation %s: %w", ds.Namespace, ds.Name, AnnotationTakeOver, err)
	}
	return &rec, nil
}

// givenBack is ds as rec found it: the recorded affinity and strategy,
// the record gone.
func givenBack(ds *appsv1.DaemonSet, rec takeOverRecord) *appsv1.DaemonSet {
	out := ds.DeepCopy()
	out.Spec.Template.Spec.Affinity = rec.Affinity
	out.Spec.UpdateStrategy = rec.Strategy
	delete(out.Annotations, AnnotationTakeOver)
	return out
}

// proxierObjects are the run's proxier in its own namespace: the
// cluster's kube-proxy pod, with our image and binary for PROXIER=ours
// (kube-proxy's own for kube-proxy), in mode, on the taken nodes only,
// under a ServiceAccount of the run bound to kube-proxy's ClusterRole.
//
// leaving is the mode the taken nodes ran ("" if they differ). Ours gets
// --migrate-from for it when it is another mode: ours never removes
// another mode's rules on a guess (proxier/app/migration.go), so without
// it kube-proxy's rules would stay beside ours for the whole run, and the
// census would rightly flag them. Upstream kube-proxy removes them itself
// at start-up.
func proxierObjects(kp *appsv1.DaemonSet, kpConfig *corev1.ConfigMap, run, ns, proxier, mode, leaving, image string) (*appsv1.DaemonSet, *corev1.ConfigMap, error) {
	i, err := kubeProxyContainer(kp)
	if err != nil {
		return nil, nil, err
	}
	labels := clusters.OwnedLabels(run)
	labels["app"] = takeOverName
	pod := kp.Spec.Template.Spec.DeepCopy()
	c := &pod.Containers[i]
	cmName, key := configFile(*pod, *c)
	var cm *corev1.ConfigMap
	switch {
	case cmName != "" && kpConfig != nil:
		conf, err := withMode(kpConfig.Data[key], mode)
		if err != nil {
			return nil, nil, fmt.Errorf("TAKE_OVER=1: configmap %s/%s key %s: %w", kpConfig.Namespace, kpConfig.Name, key, err)
		}
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: takeOverName, Namespace: ns, Labels: labels}, Data: map[string]string{}}
		for k, v := range kpConfig.Data {
			cm.Data[k] = v
		}
		cm.Data[key] = conf
		for j := range pod.Volumes {
			if pod.Volumes[j].ConfigMap != nil && pod.Volumes[j].ConfigMap.Name == cmName {
				pod.Volumes[j].ConfigMap.Name = takeOverName
			}
		}
	case cmName != "":
		return nil, nil, fmt.Errorf("TAKE_OVER=1: daemonset %s/%s reads configmap %s, which is not there", kp.Namespace, kp.Name, cmName)
	case len(c.Args) > 0:
		c.Args = withModeFlag(c.Args, mode)
	default:
		c.Command = withModeFlag(c.Command, mode)
	}
	if proxier == clusters.ProxierOurs {
		c.Image, c.ImagePullPolicy = image, corev1.PullIfNotPresent
		switch {
		case len(c.Command) > 0 && path.Base(c.Command[0]) == "kube-proxy":
			c.Command[0] = ourBinary
		case len(c.Command) == 0:
			c.Command = []string{ourBinary}
		}
		if leaving != "" && leaving != mode {
			if len(c.Args) > 0 {
				c.Args = append(c.Args, "--migrate-from="+leaving)
			} else {
				c.Command = append(c.Command, "--migrate-from="+leaving)
			}
		}
	}
	pod.Affinity = nil
	pod.NodeSelector = map[string]string{LabelTakenOver: run}
	pod.ServiceAccountName, pod.DeprecatedServiceAccount = takeOverName, ""
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: takeOverName, Namespace: ns, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": takeOverName}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": takeOverName}}, Spec: *pod},
		},
	}
	return ds, cm, nil
}

// bindingName is the run's ClusterRoleBinding (cluster scope: named and
// labelled for the run, deleted with it).
func bindingName(run string) string { return "proxyproof-" + run + "-proxier" }

// takeOverNodes moves the cluster's kube-proxy off nodes and starts
// proxier in mode there, in the run's namespace ns. modes is each node's
// mode before. Whatever it changed is recorded before it is changed, so
// Destroy (or a later run) gives it back even when this fails half way.
func (c *Cluster) takeOverNodes(ctx context.Context, proxier, mode, image string, modes map[string]string) error {
	kp, err := findKubeProxy(ctx, c.client)
	if err != nil {
		return err
	}
	if rec, err := recordOf(kp); err != nil || rec != nil {
		if err == nil {
			err = fmt.Errorf("TAKE_OVER=1: daemonset %s/%s is already moved aside by run %s (%s): make cluster-down PROVIDER=kubeconfig gives it back once that run is gone", kp.Namespace, kp.Name, rec.Run, rec.Holder)
		}
		return err
	}
	var kpConfig *corev1.ConfigMap
	if i, err := kubeProxyContainer(kp); err != nil {
		return err
	} else if name, _ := configFile(kp.Spec.Template.Spec, kp.Spec.Template.Spec.Containers[i]); name != "" {
		if kpConfig, err = c.client.CoreV1().ConfigMaps(kp.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("TAKE_OVER=1: configmap %s/%s (kube-proxy's configuration): %w", kp.Namespace, name, err)
		}
	}
	ds, cm, err := proxierObjects(kp, kpConfig, c.name, c.ns, proxier, mode, leaving(modes), image)
	if err != nil {
		return err
	}

	// The record first: from here on, whatever happens is given back.
	rec := takeOverRecord{Run: c.name, Holder: holder(), Affinity: kp.Spec.Template.Spec.Affinity, Strategy: kp.Spec.UpdateStrategy, Modes: modes}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	aside := movedAside(kp)
	if aside.Annotations == nil {
		aside.Annotations = map[string]string{}
	}
	aside.Annotations[AnnotationTakeOver] = string(b)
	if _, err := c.client.AppsV1().DaemonSets(kp.Namespace).Update(ctx, aside, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("TAKE_OVER=1: move daemonset %s/%s aside: %w", kp.Namespace, kp.Name, err)
	}
	c.took = &takeOver{daemonSet: kp.Name, rec: rec}
	nodes := c.nodeNames()
	for _, n := range nodes {
		if err := clusters.SetNodeLabel(ctx, c.client, n, LabelTakenOver, &c.name); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("TAKE_OVER=1: %w", err)
		}
	}
	klog.InfoS("Moved kube-proxy aside on the tested nodes", "daemonset", kp.Namespace+"/"+kp.Name, "nodes", nodes)
	if _, err := waitPods(ctx, c.client, kp.Namespace, metav1.FormatLabelSelector(kp.Spec.Selector), nodes, false, takeOverWait); err != nil {
		return fmt.Errorf("TAKE_OVER=1: kube-proxy not gone from the tested nodes: %w", err)
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: takeOverName, Namespace: c.ns, Labels: ds.Labels}}
	if _, err := c.client.CoreV1().ServiceAccounts(c.ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("TAKE_OVER=1: serviceaccount %s/%s: %w", c.ns, sa.Name, err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: bindingName(c.name), Labels: clusters.OwnedLabels(c.name)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: nodeProxierRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: c.ns, Name: takeOverName}},
	}
	if _, err := c.client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("TAKE_OVER=1: clusterrolebinding %s (to %s, kube-proxy's role): %w", crb.Name, nodeProxierRole, err)
	}
	if cm != nil {
		if _, err := c.client.CoreV1().ConfigMaps(c.ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("TAKE_OVER=1: configmap %s/%s: %w", c.ns, cm.Name, err)
		}
	}
	if _, err := c.client.AppsV1().DaemonSets(c.ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("TAKE_OVER=1: daemonset %s/%s: %w", c.ns, ds.Name, err)
	}
	if _, err := waitPods(ctx, c.client, c.ns, "app="+takeOverName, nodes, true, takeOverWait); err != nil {
		return fmt.Errorf("TAKE_OVER=1: PROXIER=%s not running on every tested node (if its image cannot be pulled, push %s to a registry the cluster reaches, make images builds it, and name it with TOOLS_IMAGE): %w", proxier, image, err)
	}
	// Running is not serving: wait until each node says its mode.
	for _, n := range nodes {
		if err := c.waitMode(ctx, n, mode); err != nil {
			return fmt.Errorf("TAKE_OVER=1: %w", err)
		}
	}
	klog.InfoS("Took over the tested nodes", "proxier", proxier, "mode", mode, "nodes", nodes)
	return nil
}

// waitMode waits until the mode census finds node in mode.
func (c *Cluster) waitMode(ctx context.Context, node, mode string) error {
	var last string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, takeOverWait, true, func(ctx context.Context) (bool, error) {
		last, lastErr = c.modeOf(ctx, node)
		return lastErr == nil && last == mode, nil
	})
	if err != nil {
		return fmt.Errorf("node %s: mode %q after %s, want %s (%v)", node, last, takeOverWait, mode, lastErr)
	}
	return nil
}

// giveBack undoes run's take-over: its proxier stopped and gone, every
// mode's rules it left removed from each node (cleanNode, nil to leave
// that to kube-proxy's own start-up clean-up), kube-proxy's DaemonSet as
// recorded, the node labels and the binding removed; then it waits until
// kube-proxy is Ready on those nodes again. It carries on past an error so
// as much as possible is given back, and returns them all.
func giveBack(ctx context.Context, client kubernetes.Interface, run string, cleanNode func(ctx context.Context, node string) error) (*takeOverRecord, error) {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	nodes, err := takenNodes(ctx, client, run)
	if err != nil {
		errs = append(errs, err)
	}
	ns := suiteNamespace(run)
	fg := metav1.DeletePropagationForeground
	if err := client.AppsV1().DaemonSets(ns).Delete(ctx, takeOverName, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("daemonset %s/%s: %w", ns, takeOverName, err))
	} else if _, err := waitPods(ctx, client, ns, "app="+takeOverName, nodes, false, takeOverWait); err != nil {
		errs = append(errs, err)
	}
	if cleanNode != nil {
		for _, n := range nodes {
			if err := cleanNode(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("node %s: clean-up of the run's proxier's rules: %w", n, err))
			}
		}
	}
	var rec *takeOverRecord
	var kp *appsv1.DaemonSet
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		list, err := client.AppsV1().DaemonSets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range list.Items {
			r, err := recordOf(&list.Items[i])
			if err != nil {
				return err
			}
			if r != nil && r.Run == run {
				rec, kp = r, givenBack(&list.Items[i], *r)
				_, err := client.AppsV1().DaemonSets(kp.Namespace).Update(ctx, kp, metav1.UpdateOptions{})
				return err
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("give kube-proxy's DaemonSet back: %w", err))
	}
	for _, n := range nodes {
		if err := clusters.SetNodeLabel(ctx, client, n, LabelTakenOver, nil); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("TAKE_OVER=1: %w", err))
		}
	}
	if err := client.RbacV1().ClusterRoleBindings().Delete(ctx, bindingName(run), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("clusterrolebinding %s: %w", bindingName(run), err))
	}
	if kp != nil {
		if _, err := waitPods(ctx, client, kp.Namespace, metav1.FormatLabelSelector(kp.Spec.Selector), nodes, true, takeOverWait); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy back: %w", err))
		} else {
			klog.InfoS("Gave kube-proxy back", "daemonset", kp.Namespace+"/"+kp.Name, "run", run, "nodes", nodes)
		}
	}
	return rec, errors.Join(errs...)
}

// takenNodes are the nodes labelled as taken by run.
func takenNodes(ctx context.Context, client kubernetes.Interface, run string) ([]string, error) {
	list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: LabelTakenOver + "=" + run})
	if err != nil {
		return nil, fmt.Errorf("nodes taken over by run %s: %w", run, err)
	}
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	return names, nil
}

// takeOverLeftovers are the runs whose take-over is still recorded on a
// DaemonSet while their holder is gone (all: every run's).
func takeOverLeftovers(ctx context.Context, client kubernetes.Interface, all bool) ([]string, error) {
	list, err := client.AppsV1().DaemonSets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("daemonsets in %s: %w", metav1.NamespaceSystem, err)
	}
	var runs []string
	for i := range list.Items {
		rec, err := recordOf(&list.Items[i])
		if err != nil {
			return nil, err
		}
		if rec != nil && (all || !holderAlive(rec.Holder)) {
			runs = append(runs, rec.Run)
		}
	}
	return runs, nil
}

// leaving is the one mode every node of modes ran, "" if they differ.
func leaving(modes map[string]string) string {
	var m string
	for _, v := range modes {
		if m != "" && v != m {
			return ""
		}
		m = v
	}
	return m
}
