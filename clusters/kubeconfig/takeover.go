package kubeconfig

import (
	"context"
	"errors"

	"k8s.io/client-go/kubernetes"

	"github.com/proxyproof/proxyproof/clusters"
)

// takeOver is a kube-proxy DaemonSet moved aside by this run.
type takeOver struct{}

func (c *Cluster) takeOver(ctx context.Context, spec clusters.Spec, toolsImage string) error {
	return errors.New("TAKE_OVER=1: not built yet")
}

func (t *takeOver) restore(ctx context.Context, client kubernetes.Interface) error { return nil }

func restoreLeftTakeOver(ctx context.Context, client kubernetes.Interface) error { return nil }
