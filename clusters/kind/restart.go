package kind

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/hostkernel"
)

// A node's proxier on kind is a pod of a DaemonSet, one per mode
// (proxierFor). Restarting it with a change gives the node a DaemonSet of
// its own, a variant: the shipped one with the node's configuration so far
// (mode, IPVS scheduler, extra flags), selecting the node by
// LabelProxier=<variant>. The mode DaemonSets leave every node that
// carries LabelProxier (their node affinity), so a restart is:
//
//  1. LabelProxier=stopped: the DaemonSet that ran the node's proxier
//     deletes its pod, and none makes another;
//  2. wait until that pod is gone (the old process no longer holds the
//     node's health and metrics ports);
//  3. ProxierChange.Cleanup: the proxier's --cleanup in a pod of its own
//     on the node, as kube-proxy's mode is switched by hand;
//  4. the variant written (or none: back to the mode DaemonSet);
//  5. LabelProxier=<variant> (or removed): the new pod starts;
//  6. return when the node's /healthz answers 200, which kube-proxy and
//     ours do only after their first sync.
//
// Why not delete the pod and let the DaemonSet make another: it may start
// the new pod while the old process still holds the host ports, and a
// changed configuration needs a DaemonSet of its own anyway.

// LabelProxier moves a node off the mode DaemonSets: "stopped" for none,
// else the name of the node's variant DaemonSet.
const LabelProxier = "proxyproof.dev/proxier"

const (
	proxierStopped = "stopped"
	restartWait    = 3 * time.Minute
	healthzPort    = 10256
)

var _ clusters.ProxierRestarter = &Cluster{}

// restartMu serialises the record updates of concurrent restarts.
var restartMu sync.Mutex

// nodeProxier is a node's proxier configuration after its restarts.
type nodeProxier struct {
	Mode      string   `json:"mode"`
	Scheduler string   `json:"scheduler,omitempty"`
	Flags     []string `json:"flags,omitempty"`
}

// variant is whether p differs from what the mode DaemonSet of mode
// runs: then the node needs a DaemonSet of its own.
func (p nodeProxier) variant(mode string) bool {
	return p.Mode != mode || p.Scheduler != "" || len(p.Flags) > 0
}

// applied is p with change applied.
func (p nodeProxier) applied(change clusters.ProxierChange) nodeProxier {
	if change.Mode != "" {
		p.Mode = change.Mode
	}
	if change.Scheduler != "" {
		p.Scheduler = change.Scheduler
	}
	if len(change.Flags) > 0 {
		p.Flags = slices.Clone(change.Flags)
	}
	return p
}

// variantName is the DaemonSet and ConfigMap of node's own proxier.
func variantName(base, node string) string { return base + "-node-" + node }

// RestartProxier restarts node's proxier with change applied (kept for
// later restarts) and returns when it serves again (see above).
func (c *Cluster) RestartProxier(ctx context.Context, node string, change clusters.ProxierChange) (clusters.Restarted, error) {
	if c.rec.Proxier == ProxierKubeadm {
		return clusters.Restarted{}, fmt.Errorf("cluster %s: the proxier is kubeadm's kube-proxy, which this provider does not manage: make it with PROXIER=ours or kube-proxy", c.Name())
	}
	i := slices.IndexFunc(c.rec.Nodes, func(n clusters.Node) bool { return n.Name == node })
	if i < 0 {
		return clusters.Restarted{}, fmt.Errorf("cluster %s: no node %q", c.Name(), node)
	}
	if change.Mode != "" {
		if err := checkMode(change.Mode, hostkernel.HasIPVS()); err != nil {
			return clusters.Restarted{}, fmt.Errorf("cluster %s: node %s: %w", c.Name(), node, err)
		}
	}
	if change.Scheduler != "" && !slices.Contains(clusters.IPVSSchedulers, change.Scheduler) {
		return clusters.Restarted{}, fmt.Errorf("cluster %s: node %s: IPVS scheduler %q: want one of %v", c.Name(), node, change.Scheduler, clusters.IPVSSchedulers)
	}
	client, err := c.client()
	if err != nil {
		return clusters.Restarted{}, err
	}
	n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return clusters.Restarted{}, fmt.Errorf("cluster %s: node %s: %w", c.Name(), node, err)
	}
	// The mode DaemonSet that selects the node: its mode at creation.
	dsMode := n.Labels[LabelMode]
	restartMu.Lock()
	was := c.proxierOf(i)
	now := was.applied(change)
	restartMu.Unlock()

	wrap := func(err error) error {
		return fmt.Errorf("cluster %s: node %s: restart proxier: %w", c.Name(), node, err)
	}
	base, image, err := proxierBase(c.rec.Proxier)
	if err != nil {
		return clusters.Restarted{}, wrap(err)
	}
	if err := clusters.SetNodeLabel(ctx, client, node, LabelProxier, ptr.To(proxierStopped)); err != nil {
		return clusters.Restarted{}, wrap(err)
	}
	if err := waitNoProxierPod(ctx, client, base, node); err != nil {
		return clusters.Restarted{}, wrap(err)
	}
	var done clusters.Restarted
	if change.Cleanup {
		if done.CleanupFailed, err = runCleanup(ctx, client, c.rec.Proxier, image, node); err != nil {
			return done, wrap(err)
		}
	}
	var target *string
	if now.variant(dsMode) {
		name, err := c.applyVariant(ctx, client, node, now)
		if err != nil {
			return clusters.Restarted{}, wrap(err)
		}
		target = &name
	}
	restartMu.Lock()
	c.rec.Proxiers = setProxier(c.rec.Proxiers, node, now)
	c.rec.Nodes[i].Mode = now.Mode // what Nodes() and the census say it runs
	err = writeRecord(c.dir, c.rec)
	restartMu.Unlock()
	if err != nil {
		return clusters.Restarted{}, wrap(err)
	}
	if err := clusters.SetNodeLabel(ctx, client, node, LabelProxier, target); err != nil {
		return clusters.Restarted{}, wrap(err)
	}
	if done.Served, err = waitHealthy(ctx, c.rec.Nodes[i].IP); err != nil {
		return done, wrap(err)
	}
	return done, nil
}

// proxierOf is node i's proxier configuration so far (Nodes' mode
// follows the restarts).
func (c *Cluster) proxierOf(i int) nodeProxier {
	n := c.rec.Nodes[i]
	if p, ok := c.rec.Proxiers[n.Name]; ok {
		return p
	}
	return nodeProxier{Mode: n.Mode}
}

func setProxier(m map[string]nodeProxier, node string, p nodeProxier) map[string]nodeProxier {
	if m == nil {
		m = map[string]nodeProxier{}
	}
	m[node] = p
	return m
}

// proxierBase is the mode DaemonSets' name prefix and the image of proxier.
func proxierBase(proxier string) (string, string, error) {
	switch {
	case proxier == clusters.ProxierKubeProxy:
		return "kube-proxy", KubeProxyImage, nil
	case isPath(proxier):
		img, err := pathImage(proxier)
		return "proxyproof-proxier", img, err
	}
	return "proxyproof-proxier", ProxierImage, nil
}

// variantObjects are node's own ConfigMap and DaemonSet for p.
func variantObjects(proxier, node, apiHost string, p nodeProxier) (*corev1.ConfigMap, *appsv1.DaemonSet, error) {
	_, shippedCM, shippedDS, err := shipped()
	if err != nil {
		return nil, nil, err
	}
	base, image, err := proxierBase(proxier)
	if err != nil {
		return nil, nil, err
	}
	name := variantName(base, node)
	cm, err := modeConfigMap(shippedCM, name, p.Mode)
	if err != nil {
		return nil, nil, err
	}
	if p.Scheduler != "" {
		var conf map[string]any
		if err := yaml.Unmarshal([]byte(cm.Data[proxierConfigKey]), &conf); err != nil {
			return nil, nil, err
		}
		ipvs, _ := conf["ipvs"].(map[string]any)
		if ipvs == nil {
			ipvs = map[string]any{}
		}
		ipvs["scheduler"] = p.Scheduler
		conf["ipvs"] = ipvs
		out, err := yaml.Marshal(conf)
		if err != nil {
			return nil, nil, err
		}
		cm.Data[proxierConfigKey] = string(out)
	}
	ds := modeDaemonSet(shippedDS, base, p.Mode, image, name, apiHost, proxier)
	ds.Name = name
	sel := map[string]string{"k8s-app": base, LabelProxier: name}
	ds.Labels, ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels = sel, maps.Clone(sel), maps.Clone(sel)
	pod := &ds.Spec.Template.Spec
	pod.Affinity = nil
	pod.NodeSelector = map[string]string{LabelProxier: name}
	pod.Containers[0].Command = append(pod.Containers[0].Command, p.Flags...)
	return cm, ds, nil
}

// applyVariant creates or replaces node's own ConfigMap and DaemonSet.
func (c *Cluster) applyVariant(ctx context.Context, client kubernetes.Interface, node string, p nodeProxier) (string, error) {
	cm, ds, err := variantObjects(c.rec.Proxier, node, c.rec.Nodes[0].IP, p)
	if err != nil {
		return "", err
	}
	cms := client.CoreV1().ConfigMaps(cm.Namespace)
	if old, err := cms.Get(ctx, cm.Name, metav1.GetOptions{}); err == nil {
		cm.ResourceVersion = old.ResourceVersion
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		if err != nil {
			return "", fmt.Errorf("configmap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	} else if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("configmap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	dss := client.AppsV1().DaemonSets(ds.Namespace)
	if old, err := dss.Get(ctx, ds.Name, metav1.GetOptions{}); err == nil {
		ds.ResourceVersion = old.ResourceVersion
		_, err = dss.Update(ctx, ds, metav1.UpdateOptions{})
		if err != nil {
			return "", fmt.Errorf("daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
		}
	} else if _, err := dss.Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	return ds.Name, nil
}

// waitNoProxierPod waits until node has no pod of a proxier DaemonSet
// (k8s-app=base), terminating ones included.
func waitNoProxierPod(ctx context.Context, client kubernetes.Interface, base, node string) error {
	var left []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, restartWait, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
			LabelSelector: "k8s-app=" + base, FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			return false, nil
		}
		left = left[:0]
		for _, p := range list.Items {
			left = append(left, p.Name)
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the old proxier pod (%v) still on the node after %s: %w", left, restartWait, err)
	}
	return nil
}

// runCleanup runs the proxier's --cleanup on node in a pod of its own
// (privileged, host network, the proxier's image) and waits for it to
// end: failed is its CleanupFailure when the pod failed (read from its
// log before the pod goes), err that it could not run or end.
func runCleanup(ctx context.Context, client kubernetes.Interface, proxier, image, node string) (failed string, err error) {
	bin := "/proxier"
	switch {
	case proxier == clusters.ProxierKubeProxy:
		bin = kubeProxyBinary
	case isPath(proxier):
		bin = pathBinary
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "proxier-cleanup-", Namespace: metav1.NamespaceSystem},
		Spec: corev1.PodSpec{
			NodeName: node, HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "cleanup", Image: image, ImagePullPolicy: corev1.PullNever, Command: []string{bin, "--cleanup"},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
				VolumeMounts:    []corev1.VolumeMount{{Name: "xtables-lock", MountPath: "/run/xtables.lock"}, {Name: "lib-modules", MountPath: "/lib/modules", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{
				{Name: "xtables-lock", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run/xtables.lock", Type: ptr.To(corev1.HostPathFileOrCreate)}}},
				{Name: "lib-modules", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/lib/modules"}}},
			},
		},
	}
	made, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("clean-up pod: %w", err)
	}
	defer func() {
		_ = client.CoreV1().Pods(made.Namespace).Delete(context.WithoutCancel(ctx), made.Name, metav1.DeleteOptions{})
	}()
	var phase corev1.PodPhase
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, restartWait, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(made.Namespace).Get(ctx, made.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, err
		}
		if err != nil {
			return false, nil
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	if err != nil {
		return "", fmt.Errorf("%s --cleanup (pod %s/%s): phase %q: %w", bin, made.Namespace, made.Name, phase, err)
	}
	if phase == corev1.PodFailed {
		log, err := client.CoreV1().Pods(made.Namespace).GetLogs(made.Name, &corev1.PodLogOptions{Container: "cleanup"}).DoRaw(ctx)
		if err != nil {
			log = []byte("(its log: " + err.Error() + ")")
		}
		return clusters.CleanupFailure(fmt.Sprintf("%s --cleanup (pod %s/%s)", bin, made.Namespace, made.Name), log), nil
	}
	return "", nil
}

// waitHealthy polls the node's /healthz (its host network, from this
// host on the cluster's network) until it answers 200; that moment.
func waitHealthy(ctx context.Context, nodeIP string) (time.Time, error) {
	url := "http://" + nodeIP + ":" + strconv.Itoa(healthzPort) + "/healthz"
	hc := &http.Client{Timeout: time.Second}
	var served time.Time
	var last string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, restartWait, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		if resp.StatusCode == http.StatusOK {
			served = time.Now()
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("%s not 200 within %s (last: %s): %w", url, restartWait, last, err)
	}
	return served, nil
}
