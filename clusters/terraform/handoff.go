package terraform

import (
	"context"
	"fmt"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
	"github.com/proxyproof/proxyproof/clusters/kubeconfig"
)

// handOff gives the module's cluster to the provider that can do most
// with it. A cluster our proxyproof_cluster made on kind (outputs
// cluster_provider and cluster_name) is opened through the kind provider,
// which made it: it keeps the outside client and the proxier restarts
// that only the maker has. Any other module's cluster is a cluster the
// suite did not make, so it goes to the kubeconfig provider with its
// outputs' kubeconfig and context, testing the proxier it runs.
func handOff(ctx context.Context, o moduleOutputs, spec clusters.Spec) (clusters.Cluster, error) {
	if o.ClusterProvider == kind.ProviderName && o.ClusterName != "" {
		c, err := kind.NewProvider().Open(o.ClusterName)
		if err != nil {
			return nil, fmt.Errorf("cluster %s (outputs %s, %s): %w", o.ClusterName, OutClusterProvider, OutClusterName, err)
		}
		return keptCluster{c}, nil
	}
	ks := spec
	ks.Kubeconfig, ks.Context = o.Kubeconfig, o.Context
	ks.Proxier, ks.TakeOver = clusters.ProxierExisting, false
	c, err := kubeconfig.NewProvider().Create(ctx, ks)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", o.Kubeconfig, err)
	}
	return c, nil
}

// keptCluster leaves the cluster to the module's destroy: it is the
// module's resource.
type keptCluster struct{ clusters.Cluster }

func (keptCluster) Destroy(context.Context) error { return nil }

// Unwrap is the maker's cluster, whose capabilities clusters.As finds.
func (k keptCluster) Unwrap() clusters.Cluster { return k.Cluster }
