package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/proxyproof/proxyproof/clusters"
)

// pollInterval is how often the waits look again.
const pollInterval = time.Second

// controlPlaneTaint keeps ordinary pods off a kubeadm control plane.
const controlPlaneTaint = "node-role.kubernetes.io/control-plane"

// untaintControlPlane makes the control plane a node like the others
// (kind does this itself only for a one-node cluster).
func untaintControlPlane(ctx context.Context, client kubernetes.Interface, name string) error {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	kept := slices.DeleteFunc(slices.Clone(node.Spec.Taints), func(t corev1.Taint) bool { return t.Key == controlPlaneTaint })
	if len(kept) == len(node.Spec.Taints) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"taints": kept}})
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("node %s: remove taint %s: %w", name, controlPlaneTaint, err)
	}
	return nil
}

// podNetwork writes each node's CNI configuration for the podCIDR the
// controller-manager gave it, and routes every other node's podCIDR
// through that node.
func (c *Cluster) podNetwork(ctx context.Context, client kubernetes.Interface, kindNodes []nodes.Node) error {
	cidrs := make([]string, len(c.rec.Nodes))
	ips := make([]string, len(c.rec.Nodes))
	for i, n := range c.rec.Nodes {
		ips[i] = n.IP
		err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
			node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil // the API server may still be settling
			}
			cidrs[i] = node.Spec.PodCIDR
			return cidrs[i] != "", nil
		})
		if err != nil {
			return fmt.Errorf("node %s: no podCIDR allocated: %w", n.Name, err)
		}
	}
	mtu, err := nodeMTU(ctx, kindNodes[0])
	if err != nil {
		return err
	}
	for i, n := range kindNodes {
		for _, r := range podRoutes(i, cidrs, ips) {
			if err := n.CommandContext(ctx, "ip", "route", "replace", r.PodCIDR, "via", r.Via).Run(); err != nil {
				return fmt.Errorf("node %s: route %s via %s: %w", n, r.PodCIDR, r.Via, err)
			}
		}
		conf, err := cniConflist(cidrs[i], mtu)
		if err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
		if err := nodeutils.WriteFile(n, cniConfPath, string(conf)); err != nil {
			return fmt.Errorf("node %s: write %s: %w", n, cniConfPath, err)
		}
	}
	return nil
}

// deployProxier applies the proxier's RBAC, and a ConfigMap and a
// DaemonSet per mode present.
func (c *Cluster) deployProxier(ctx context.Context, client kubernetes.Interface, spec clusters.Spec) error {
	if spec.Proxier == ProxierKubeadm {
		return nil // kubeadm deployed it
	}
	modes := make([]string, len(spec.Nodes))
	for i, n := range spec.Nodes {
		modes[i] = n.Mode
	}
	objs, err := proxierFor(spec.Proxier, modes, c.rec.Nodes[0].IP)
	if err != nil {
		return err
	}
	sa, crb := objs.ServiceAccount, objs.Binding
	if _, err := client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("serviceaccount %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("clusterrolebinding %s: %w", crb.Name, err)
	}
	for _, cm := range objs.ConfigMaps {
		if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("configmap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	for _, ds := range objs.DaemonSets {
		if _, err := client.AppsV1().DaemonSets(ds.Namespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
		}
	}
	return nil
}

// waitReady waits until every node is Ready and every proxier DaemonSet
// has a Ready pod on each node of its mode; on timeout it says what was
// not.
func (c *Cluster) waitReady(ctx context.Context, client kubernetes.Interface) error {
	var pending []string
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		pending = c.notReady(ctx, client)
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(pending, "; "), err)
	}
	return nil
}

// notReady lists what is not ready yet, in words.
func (c *Cluster) notReady(ctx context.Context, client kubernetes.Interface) []string {
	var pending []string
	perMode := map[string]int32{}
	for _, n := range c.rec.Nodes {
		perMode[n.Mode]++
		node, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			pending = append(pending, fmt.Sprintf("node %s: %v", n.Name, err))
			continue
		}
		if !nodeReady(node) {
			pending = append(pending, "node "+n.Name+" not Ready")
		}
	}
	if c.rec.Proxier == ProxierKubeadm {
		return append(pending, kubeadmProxyNotReady(ctx, client, int32(len(c.rec.Nodes)))...)
	}
	list, err := client.AppsV1().DaemonSets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: LabelMode})
	if err != nil {
		return append(pending, "proxier daemonsets: "+err.Error())
	}
	for mode, want := range perMode {
		i := slices.IndexFunc(list.Items, func(ds appsv1.DaemonSet) bool { return ds.Labels[LabelMode] == mode })
		if i < 0 {
			pending = append(pending, "no proxier daemonset for mode "+mode)
			continue
		}
		ds := list.Items[i]
		if ds.Status.NumberReady != want || ds.Status.UpdatedNumberScheduled != want {
			pending = append(pending, fmt.Sprintf("daemonset %s: %d of %d pods ready", ds.Name, ds.Status.NumberReady, want))
		}
	}
	return pending
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kubeadmProxyNotReady is notReady for kubeadm's kube-proxy DaemonSet.
func kubeadmProxyNotReady(ctx context.Context, client kubernetes.Interface, want int32) []string {
	ds, err := client.AppsV1().DaemonSets(metav1.NamespaceSystem).Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return []string{"daemonset kube-system/kube-proxy: " + err.Error()}
	}
	if ds.Status.NumberReady != want {
		return []string{fmt.Sprintf("daemonset kube-system/kube-proxy: %d of %d pods ready", ds.Status.NumberReady, want)}
	}
	return nil
}
