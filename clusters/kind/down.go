package kind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

// newKind is kind's cluster provider on Docker, logging through klog.
func newKind() *kindcluster.Provider {
	return kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(klogger{}))
}

// Down removes everything of cluster name this provider made, found by
// name and label, whether or not Create finished and whether or not the
// process that made it is alive (a killed suite): kind's node containers,
// the outside client, the host rule for the bridge, the network, the
// state dir. Nothing of it left is not an error.
func (p *Provider) Down(ctx context.Context, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q: want 1-32 of [a-z0-9-]", name)
	}
	return down(ctx, name, p.stateDir(name))
}

func down(ctx context.Context, name, dir string) error {
	var errs []error
	if err := newKind().Delete(name, filepath.Join(dir, kubeconfigFile)); err != nil {
		errs = append(errs, fmt.Errorf("cluster %s: kind delete: %w", name, err))
	}
	containers, err := labelled(ctx, "container", name)
	errs = append(errs, err)
	if len(containers) > 0 {
		_, err := docker(ctx, append([]string{"rm", "--force", "--volumes"}, containers...)...)
		errs = append(errs, err)
	}
	// The rule first: it names the bridge, which goes with the network.
	errs = append(errs, removeBridgeRules(ctx, name))
	networks, err := labelled(ctx, "network", name)
	errs = append(errs, err)
	for _, n := range networks {
		_, err := docker(ctx, "network", "rm", n)
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(dir))
	return errors.Join(errs...)
}

// Leftovers names what of cluster name is on the machine: empty once
// Down is done (for tests of callers that bring kind clusters down).
func (p *Provider) Leftovers(ctx context.Context, name string) ([]string, error) {
	return p.leftovers(ctx, name)
}

// leftovers names what of cluster name is on the machine (for the tests,
// and for Create to tell a running cluster from a crash's remains).
func (p *Provider) leftovers(ctx context.Context, name string) ([]string, error) {
	var left []string
	kindNodes, err := newKind().ListNodes(name)
	if err != nil {
		return nil, err
	}
	for _, n := range kindNodes {
		left = append(left, "node container "+n.String())
	}
	for _, kind := range []string{"container", "network"} {
		names, err := labelled(ctx, kind, name)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			left = append(left, kind+" "+n)
		}
	}
	if dump, err := iptables(ctx, "-S", chainUser); err == nil && len(rulesTagged(dump, ruleComment(name))) > 0 {
		left = append(left, "iptables rule in "+chainUser)
	}
	if _, err := os.Stat(p.stateDir(name)); err == nil {
		left = append(left, "state dir "+p.stateDir(name))
	}
	return left, nil
}
