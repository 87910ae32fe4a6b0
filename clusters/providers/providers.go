// Package providers is where provider names meet their implementations:
// the one place the suites' side imports a concrete provider. Everything
// else holds clusters.Provider and clusters.Cluster.
package providers

import (
	"slices"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
	"github.com/proxyproof/proxyproof/clusters/kubeconfig"
	"github.com/proxyproof/proxyproof/clusters/local"
	"github.com/proxyproof/proxyproof/clusters/terraform"
)

// Default is the provider when none is named.
const Default = local.ProviderName

// registered are the providers this checkout has, by the name PROVIDER=
// gives.
var registered = map[string]clusters.Provider{
	local.ProviderName:      local.Provider{},
	kind.ProviderName:       kind.NewProvider(),
	kubeconfig.ProviderName: kubeconfig.NewProvider(),
	terraform.ProviderName:  &terraform.Provider{},
}

// planned are the providers the design names that are not built yet:
// refused by name, never replaced by another.
var planned []string

// Get is the provider called name.
func Get(name string) (clusters.Provider, bool) {
	p, ok := registered[name]
	return p, ok
}

// Names lists the registered providers, sorted.
func Names() []string {
	var names []string
	for n := range registered {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Planned lists the providers the design names that are not registered
// yet, sorted.
func Planned() []string {
	var names []string
	for _, n := range planned {
		if _, ok := registered[n]; !ok {
			names = append(names, n)
		}
	}
	return names
}
