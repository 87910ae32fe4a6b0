package local

// The adapter to sigs.k8s.io/e2e-framework v0.6.0's
// support.E2EClusterProvider, so its env funcs can drive this provider.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/support"
)

// E2EProvider drives a local cluster from e2e-framework's env funcs:
//
//	envfuncs.CreateClusterWithOpts(local.NewE2EProvider(), "proxyproof")
type E2EProvider struct {
	spec    Spec
	cluster *Cluster
}

var _ support.E2EClusterProvider = (*E2EProvider)(nil)

// NewE2EProvider is a provider for the default spec (3 iptables nodes, our
// proxier); WithSpec changes it.
func NewE2EProvider() *E2EProvider { return &E2EProvider{} }

// WithSpec sets the whole cluster spec (nodes, modes, proxier).
func WithSpec(spec Spec) support.ClusterOpts {
	return func(p support.E2EClusterProvider) {
		if lp, ok := p.(*E2EProvider); ok {
			name := lp.spec.Name
			lp.spec = spec
			if spec.Name == "" {
				lp.spec.Name = name
			}
		}
	}
}

func (p *E2EProvider) SetDefaults() support.E2EClusterProvider { return p }

func (p *E2EProvider) WithName(name string) support.E2EClusterProvider {
	p.spec.Name = name
	return p
}

// WithVersion accepts only the pinned control plane version: the local
// provider builds one version (hack/controlplane).
func (p *E2EProvider) WithVersion(version string) support.E2EClusterProvider { return p }

// WithPath sets the proxier binary (a kube-proxy-compatible path, or
// "ours" / "kube-proxy").
func (p *E2EProvider) WithPath(path string) support.E2EClusterProvider {
	p.spec.Proxier = path
	return p
}

func (p *E2EProvider) WithOpts(opts ...support.ClusterOpts) support.E2EClusterProvider {
	for _, o := range opts {
		o(p)
	}
	return p
}

// Create brings the cluster up and returns its kubeconfig path. args are
// node modes ("iptables", "nftables", ...), one per node, when given.
func (p *E2EProvider) Create(ctx context.Context, args ...string) (string, error) {
	spec := p.spec
	if len(args) > 0 {
		spec.Nodes = nil
		for _, m := range args {
			spec.Nodes = append(spec.Nodes, NodeSpec{Mode: m})
		}
	}
	c, err := Create(ctx, spec)
	if err != nil {
		return "", err
	}
	p.cluster = c
	return c.Kubeconfig(), nil
}

// CreateWithConfig reads node modes from a file, one per line.
func (p *E2EProvider) CreateWithConfig(ctx context.Context, configFile string) (string, error) {
	b, err := os.ReadFile(configFile)
	if err != nil {
		return "", fmt.Errorf("local cluster config: %w", err)
	}
	return p.Create(ctx, strings.Fields(string(b))...)
}

func (p *E2EProvider) GetKubeconfig() string {
	if p.cluster == nil {
		return ""
	}
	return p.cluster.Kubeconfig()
}

func (p *E2EProvider) GetKubectlContext() string {
	return "kubernetes-admin@" + p.spec.withDefaults().Name
}

// ExportLogs copies the cluster's logs (control plane, agents, proxiers,
// pods) under dest.
func (p *E2EProvider) ExportLogs(ctx context.Context, dest string) error {
	if p.cluster == nil {
		return fmt.Errorf("local cluster %s: not created", p.spec.Name)
	}
	root := p.cluster.StateDir()
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") && filepath.Base(path) != "log" {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out := filepath.Join(dest, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}

func (p *E2EProvider) Destroy(ctx context.Context) error {
	if p.cluster != nil {
		return p.cluster.Destroy(ctx)
	}
	return Destroy(ctx, p.spec.withDefaults().Name)
}

// WaitForControlPlane is a no-op: Create returns only once the control
// plane, every node and every proxier are ready.
func (p *E2EProvider) WaitForControlPlane(ctx context.Context, client klient.Client) error {
	return nil
}

func (p *E2EProvider) KubernetesRestConfig() *rest.Config {
	if p.cluster == nil {
		return nil
	}
	cfg, err := p.cluster.RestConfig()
	if err != nil {
		return nil
	}
	return cfg
}
