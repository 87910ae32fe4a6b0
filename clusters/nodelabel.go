package clusters

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// SetNodeLabel sets the label key on node to *value, or removes it (nil),
// with one merge patch that leaves every other label alone. Providers
// steer their proxier DaemonSets with node labels (the kind provider's
// restart, the kubeconfig provider's take-over). The error wraps the API
// error, so apierrors.IsNotFound still tells a node that is gone.
func SetNodeLabel(ctx context.Context, client kubernetes.Interface, node, key string, value *string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: value}}})
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label node %s %s: %w", node, key, err)
	}
	return nil
}
