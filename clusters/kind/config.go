package kind

import (
	"fmt"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/proxyproof/proxyproof/clusters"
)

// Cluster address ranges: kind's defaults, and the clusterCIDR the
// proxier's ConfigMap in manifests/ assumes.
const (
	PodSubnet     = "10.244.0.0/16"
	ServiceSubnet = "10.96.0.0/16"
)

// LabelMode is on every node, naming the mode it was made to run; the
// proxier DaemonSet of that mode selects the nodes by it.
const LabelMode = "proxyproof.dev/mode"

// apiServerPort is where kubeadm's API server listens in the
// control-plane container.
const apiServerPort = 6443

// kubeProxyNone tells kind to skip kubeadm's kube-proxy addon: the
// proxier under test is the only one.
const kubeProxyNone v1alpha4.ProxyMode = "none"

// kindConfig is the kind cluster for spec: spec.Nodes[0] is the control
// plane, the rest workers, each labelled with its mode. Every node is
// schedulable (Create removes the control-plane taint) so NODES=n gives
// n nodes for pods, each with a proxier, as the local provider does; a
// separate control plane would cost a node container (CPU is scarce)
// and add a node the specs would have to leave out.
func kindConfig(spec clusters.Spec, image string) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     spec.Name,
		Networking: v1alpha4.Networking{
			IPFamily:          v1alpha4.IPv4Family,
			PodSubnet:         PodSubnet,
			ServiceSubnet:     ServiceSubnet,
			DisableDefaultCNI: true,
			KubeProxyMode:     kubeProxyNone,
		},
	}
	if spec.Proxier == ProxierKubeadm && len(spec.Nodes) > 0 {
		cfg.Networking.KubeProxyMode = v1alpha4.ProxyMode(spec.Nodes[0].Mode)
	}
	for i, n := range spec.Nodes {
		role := v1alpha4.WorkerRole
		if i == 0 {
			role = v1alpha4.ControlPlaneRole
		}
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{
			Role:   role,
			Image:  image,
			Labels: map[string]string{LabelMode: n.Mode},
		})
	}
	return cfg
}

// nodeName is the name kind gives node i of cluster (its container and
// its Kubernetes Node): <cluster>-control-plane, then <cluster>-worker,
// <cluster>-worker2, ...
func nodeName(cluster string, i int) string {
	switch i {
	case 0:
		return cluster + "-control-plane"
	case 1:
		return cluster + "-worker"
	default:
		return fmt.Sprintf("%s-worker%d", cluster, i)
	}
}
