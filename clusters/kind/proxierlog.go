package kind

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/proxyproof/proxyproof/clusters"
)

var _ clusters.ProxierLogs = &Cluster{}

// ProxierLog is the last maxBytes of the log of node's proxier pod (the
// current one: a restart replaces the pod, and its predecessor's log
// goes with it).
func (c *Cluster) ProxierLog(ctx context.Context, node string, maxBytes int64) ([]byte, error) {
	base, _, err := proxierBase(c.rec.Proxier)
	if err != nil {
		return nil, err
	}
	client, err := c.client()
	if err != nil {
		return nil, err
	}
	pods, err := client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		LabelSelector: "k8s-app=" + base, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: node %s: proxier pods: %w", c.Name(), node, err)
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("cluster %s: node %s: no %s pod", c.Name(), node, base)
	}
	p := pods.Items[0]
	// LimitBytes counts from the start: the tail is lines, then cut.
	b, err := client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To(maxBytes / 100)}).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: node %s: log of pod %s: %w", c.Name(), node, p.Name, err)
	}
	return b[max(0, int64(len(b))-maxBytes):], nil
}
