package terraform

import (
	"context"
	"fmt"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
)

// handOff gives the module's cluster to the kubeconfig provider.
//
// Until clusters/kubeconfig lands, a cluster our own proxyproof_cluster
// made on kind (outputs cluster_provider and cluster_name) is opened
// through the kind provider; any other is refused, saying so.
func handOff(_ context.Context, o moduleOutputs, _ clusters.Spec) (clusters.Cluster, error) {
	if o.ClusterProvider == kind.ProviderName && o.ClusterName != "" {
		c, err := kind.NewProvider().Open(o.ClusterName)
		if err != nil {
			return nil, fmt.Errorf("cluster %s (outputs %s, %s): %w", o.ClusterName, OutClusterProvider, OutClusterName, err)
		}
		return keptCluster{c}, nil
	}
	return nil, fmt.Errorf("kubeconfig %s: the kubeconfig provider is not in this checkout yet; only a kind cluster of our proxyproof_cluster (outputs %s, %s) can be tested", o.Kubeconfig, OutClusterProvider, OutClusterName)
}

// keptCluster leaves the cluster to the module's destroy: it is the
// module's resource.
type keptCluster struct{ clusters.Cluster }

func (keptCluster) Destroy(context.Context) error { return nil }
