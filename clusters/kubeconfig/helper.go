package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/clusters"
)

// The helper DaemonSet: one privileged hostNetwork pod per node, in the
// suite's own namespace, through which ExecOnNode reaches the node.
const (
	helperName = "proxyproof-node"
	// toolsContainer runs our proxier image for its tools (iptables,
	// nft, ipset, conntrack, sysctl); probeContainer the backend image
	// for netprobe, with the node's network namespace either way.
	toolsContainer = "tools"
	probeContainer = "probe"
	helperTimeout  = 3 * time.Minute
)

// DefaultToolsImage is our proxier image, whose tools layer the helper
// runs (make images builds it for a user's registry).
const DefaultToolsImage = "proxyproof/proxier:dev"

// ErrNoNodeAccess is wrapped by ExecOnNode's error where the cluster does
// not let the suite run a privileged hostNetwork pod (RBAC, PodSecurity).
var ErrNoNodeAccess = errors.New("no node access")

func helperLabels() map[string]string { return map[string]string{"app": helperName} }

// helperPodSpec: neither container serves anything beyond the node's
// loopback. The tools image has no shell and no sleep: vmstat with a
// day's interval is its one quiet, long-running program. The probe
// container's netserver listens on a kernel-chosen loopback port only,
// so it can collide with nothing on the node.
func helperPodSpec(toolsImage, backendImage string) corev1.PodSpec {
	return corev1.PodSpec{
		HostNetwork:                   true,
		DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		Volumes: []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: ptr.To(corev1.HostPathDirectory)},
		}}},
		Containers: []corev1.Container{
			{
				Name: toolsContainer, Image: toolsImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"vmstat", "-n", "86400"},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
				VolumeMounts:    []corev1.VolumeMount{{Name: "host", MountPath: hostRoot, ReadOnly: true}},
			},
			{
				Name: probeContainer, Image: backendImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"--address=127.0.0.1", "--http-port=0", "--udp-port=-1", "--shutdown-delay=0s"},
			},
		},
	}
}

// mayRunHelper asks admission, with a server-side dry run of one helper
// pod, whether the namespace may run it: RBAC and PodSecurity answer as
// they would for the DaemonSet's pods, and nothing is created. It
// returns ErrNoNodeAccess wrapped with the cluster's reason when not.
func mayRunHelper(ctx context.Context, client kubernetes.Interface, ns string, spec corev1.PodSpec) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: helperName + "-dry-run", Labels: helperLabels()}, Spec: spec}
	_, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
		return fmt.Errorf("%w: the cluster refuses a privileged hostNetwork pod in namespace %s: %v", ErrNoNodeAccess, ns, err)
	}
	if err != nil {
		return fmt.Errorf("namespace %s: dry run of the node helper pod: %w", ns, err)
	}
	return nil
}

// startHelper creates the DaemonSet and waits until every node of nodes
// has a Ready helper pod; it returns the pod of each node.
func startHelper(ctx context.Context, client kubernetes.Interface, ns string, spec corev1.PodSpec, nodes []string) (map[string]string, error) {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: helperName, Labels: helperLabels()},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: helperLabels()},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: helperLabels()}, Spec: spec},
		},
	}
	if _, err := client.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: %w", ns, helperName, err)
	}
	pods, err := waitPods(ctx, client, ns, "app="+helperName, nodes, true, helperTimeout)
	if err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: %w: if an image cannot be pulled, push it to a registry the cluster reaches (make images) and name it with BACKEND_IMAGE / TOOLS_IMAGE",
			ns, helperName, err)
	}
	return pods, nil
}

// waitPods waits until every node of nodes has a Ready pod matching
// selector in ns (ready), or none at all (!ready: gone, not terminating),
// for at most timeout. It returns each node's Ready pod.
func waitPods(ctx context.Context, client kubernetes.Interface, ns, selector string, nodes []string, ready bool, timeout time.Duration) (map[string]string, error) {
	var missing []string
	var readyOn map[string]string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		var why []string
		readyOn, why = readyPods(list.Items)
		present := map[string]bool{}
		for _, p := range list.Items {
			present[p.Spec.NodeName] = true
		}
		missing = nil
		for _, n := range nodes {
			if (ready && readyOn[n] == "") || (!ready && present[n]) {
				missing = append(missing, n)
			}
		}
		if ready && len(missing) > 0 && len(why) > 0 {
			missing = append(missing, why...)
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		state := "Ready"
		if !ready {
			state = "gone"
		}
		return nil, fmt.Errorf("pods %s in %s not %s on every node after %s: %s: %w", selector, ns, state, timeout, strings.Join(missing, "; "), err)
	}
	return readyOn, nil
}

// readyPods maps node to its Ready helper pod, and says why the others
// are not Ready.
func readyPods(pods []corev1.Pod) (map[string]string, []string) {
	ready := map[string]string{}
	var why []string
	for _, p := range pods {
		if isReady(p) {
			ready[p.Spec.NodeName] = p.Name
			continue
		}
		reason := string(p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				reason = fmt.Sprintf("container %s (%s) %s: %s", cs.Name, cs.Image, w.Reason, w.Message)
			}
		}
		why = append(why, fmt.Sprintf("pod %s on %s: %s", p.Name, p.Spec.NodeName, reason))
	}
	sort.Strings(why)
	return ready, why
}

func isReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil
		}
	}
	return false
}

// execArgv is cmd with the container it runs in: the probe in the
// backend image's container (on its PATH), anything else in the tools.
// A node command the tools image lacks (hostTools) runs as the node's own
// binary through the node's own dynamic loader and libraries, from the
// read-only mount of its root: its shell then finds iptables and nft in
// the tools image as usual.
func execArgv(cmd []string) (string, []string) {
	if len(cmd) > 0 && cmd[0] == clusters.Probe {
		return probeContainer, cmd
	}
	if len(cmd) > 0 {
		if bin, ok := hostTools[cmd[0]]; ok {
			return toolsContainer, append([]string{hostLoader, "--library-path", hostLibraries, hostRoot + bin}, cmd[1:]...)
		}
	}
	return toolsContainer, cmd
}

// The node's root, mounted read-only in the tools container, and what of
// it runs the node's own commands. Why: the tools image (our proxier's)
// has no shell, cat, uname or ip, which the mode census and the
// rules-restored spec run on a node; a node has them, and an image with
// them would be one more the user must push. The paths are glibc
// x86_64's on Debian and Ubuntu (kind's nodes included); the loader is
// the real file, not /lib64's absolute symlink, which would resolve into
// the container.
const (
	hostRoot      = "/host"
	hostLoader    = hostRoot + "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	hostLibraries = hostRoot + "/lib/x86_64-linux-gnu:" + hostRoot + "/usr/lib/x86_64-linux-gnu"
)

// hostTools are the node commands the tools image lacks, by the path
// under the node's root (/bin, which merged-/usr nodes link to usr/bin).
var hostTools = map[string]string{
	"sh":    "/bin/sh",
	"cat":   "/bin/cat",
	"uname": "/bin/uname",
	"ip":    "/bin/ip",
}
