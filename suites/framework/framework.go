package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
	"github.com/proxyproof/proxyproof/suites/census"
)

// Framework is one mode's cluster and what the specs need to drive it.
// It holds the cluster only through the clusters seam, so no spec knows
// which provider made it.
type Framework struct {
	Params
	Cluster clusters.Cluster
	Client  kubernetes.Interface
	// attached: the cluster was running before (Params.Cluster) and is
	// left running by Teardown.
	attached bool
}

// Environment is <mode dir>/environment.json, read by the runner for
// run.json: what the cluster really was.
type Environment struct {
	Cluster           string            `json:"cluster"`
	KubernetesVersion string            `json:"kubernetesVersion,omitempty"`
	Proxier           string            `json:"proxier"`
	Nodes             map[string]string `json:"nodes"`
}

// EnvironmentFile is the file name of Environment inside the mode dir.
const EnvironmentFile = "environment.json"

// ClusterName is unique per process (several runs may share the machine)
// and fits the provider's 10 characters.
func ClusterName(mode string) string {
	return fmt.Sprintf("e2e%c%d", mode[0], os.Getpid()%100000)
}

// Setup brings up the mode's cluster on the provider Params names.
func Setup(ctx context.Context, p Params) (*Framework, error) {
	provider, ok := providers.Get(p.Provider)
	if !ok {
		return nil, CheckProvider(p.Provider)
	}
	return SetupWith(ctx, p, provider)
}

// SetupWith brings up the mode's cluster on provider: p.Nodes nodes of
// p.Mode running p.Proxier. The probe (clusters.Probe) is the provider's
// to make runnable.
func SetupWith(ctx context.Context, p Params, provider clusters.Provider) (*Framework, error) {
	if err := os.MkdirAll(p.ModeDir(), 0o755); err != nil {
		return nil, fmt.Errorf("mode dir: %w", err)
	}
	if p.Cluster != "" {
		return attach(ctx, p, provider)
	}
	spec := p.Spec(ClusterName(p.Mode))
	what := fmt.Sprintf("cluster %s (provider %s, %d %s nodes, proxier %s)", spec.Name, provider.Name(), p.Nodes, p.Mode, p.Proxier)
	if p.Mode == ModeMixed {
		what = fmt.Sprintf("cluster %s (provider %s, nodes %s, proxier %s)", spec.Name, provider.Name(), p.NodeModes, p.Proxier)
	}
	if err := provider.Check(spec); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	began := time.Now()
	c, err := provider.Create(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// The report names the proxier the cluster runs: a Terraform module's
	// own cluster runs its own, whatever PROXIER said.
	if rp, ok := clusters.As[clusters.RunningProxier](c); ok && rp.RunningProxier() != "" && rp.RunningProxier() != p.Proxier {
		klog.InfoS("The cluster runs another proxier than PROXIER names; recording the cluster's", "PROXIER", p.Proxier, "runs", rp.RunningProxier())
		p.Proxier = rp.RunningProxier()
	}
	klog.InfoS("Cluster up", "cluster", c.Name(), "provider", c.Provider(), "mode", p.Mode, "proxier", p.Proxier, "took", time.Since(began).Round(time.Millisecond))
	client, err := clientOf(c)
	if err != nil {
		_ = c.Destroy(ctx)
		return nil, err
	}
	f := &Framework{Params: p, Cluster: c, Client: client}
	if err := f.writeEnvironment(); err != nil {
		klog.ErrorS(err, "Environment not recorded", "dir", p.ModeDir())
	}
	f.TakeCensus(ctx, census.Start)
	return f, nil
}

// censusTimeout bounds one census: a few commands per node, seconds each
// on a kernel-VM node.
const censusTimeout = 3 * time.Minute

// TakeCensus records the mode census (suites/census) in the mode dir,
// where the runner reads it: a census that finds a node running another
// mode, or another mode's leftovers, fails the run there, naming the node.
func (f *Framework) TakeCensus(ctx context.Context, when string) census.Census {
	ctx, cancel := context.WithTimeout(ctx, censusTimeout)
	defer cancel()
	c := census.Take(ctx, f.Cluster, when)
	klog.Info(c.String())
	// A framework made without a run directory (a unit test) records
	// nothing: an empty RunDir would put census.json in the working dir.
	if f.RunDir == "" {
		return c
	}
	if err := census.Append(f.ModeDir(), c); err != nil {
		klog.ErrorS(err, "Census not recorded", "dir", f.ModeDir())
	}
	return c
}

// attach takes the running cluster p.Cluster, whose every node must run
// p.Mode: a suite run in one mode on nodes of another would report the
// wrong mode's behaviour.
func attach(ctx context.Context, p Params, provider clusters.Provider) (*Framework, error) {
	a, ok := provider.(clusters.Attacher)
	if !ok {
		return nil, &ParamError{EnvCluster, p.Cluster, fmt.Sprintf("nothing: provider %s cannot attach to a running cluster", provider.Name())}
	}
	c, err := a.Attach(p.Cluster)
	if err != nil {
		return nil, fmt.Errorf("attach to cluster %s (provider %s): %w", p.Cluster, provider.Name(), err)
	}
	if err := nodesRun(c, p.Mode); err != nil {
		return nil, err
	}
	client, err := clientOf(c)
	if err != nil {
		return nil, err
	}
	klog.InfoS("Attached to a running cluster", "cluster", c.Name(), "provider", c.Provider(), "mode", p.Mode)
	f := &Framework{Params: p, Cluster: c, Client: client, attached: true}
	if err := f.writeEnvironment(); err != nil {
		klog.ErrorS(err, "Environment not recorded", "dir", p.ModeDir())
	}
	// make validate's switch leaves the nodes in another mode: the census
	// at the start of the next phase shows any node not in it, or leftovers.
	f.TakeCensus(ctx, census.Start)
	return f, nil
}

// nodesRun checks that every node of c runs mode.
func nodesRun(c clusters.Cluster, mode string) error {
	for _, n := range c.Nodes() {
		if n.Mode != mode {
			return fmt.Errorf("cluster %s: node %s runs mode %s, not MODE=%s", c.Name(), n.Name, n.Mode, mode)
		}
	}
	return nil
}

func clientOf(c clusters.Cluster) (kubernetes.Interface, error) {
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name(), err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: client: %w", c.Name(), err)
	}
	return client, nil
}

func (f *Framework) writeEnvironment() error {
	env := Environment{Cluster: f.Cluster.Name(), Proxier: f.Proxier, Nodes: map[string]string{}}
	for _, n := range f.Cluster.Nodes() {
		env.Nodes[n.Name] = n.Mode
	}
	if v, err := f.Client.Discovery().ServerVersion(); err == nil {
		env.KubernetesVersion = v.GitVersion
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(f.ModeDir(), EnvironmentFile), append(b, '\n'), 0o644)
}

// Teardown destroys the cluster unless KEEP=1 asked to keep it.
func (f *Framework) Teardown(ctx context.Context) error {
	if f == nil || f.Cluster == nil {
		return nil
	}
	f.TakeCensus(ctx, census.End)
	if f.attached {
		klog.InfoS("Leaving the attached cluster running for whoever made it", "cluster", f.Cluster.Name())
		return nil
	}
	if f.Keep {
		klog.InfoS("Keeping the cluster (KEEP=1)", "cluster", f.Cluster.Name(), "kubeconfig", f.Cluster.Kubeconfig(),
			"down", fmt.Sprintf("make cluster-down PROVIDER=%s NAME=%s", f.Cluster.Provider(), f.Cluster.Name()))
		return nil
	}
	return f.Cluster.Destroy(ctx)
}

// NodeNames lists the nodes in order.
func (f *Framework) NodeNames() []string {
	var names []string
	for _, n := range f.Cluster.Nodes() {
		names = append(names, n.Name)
	}
	return names
}

// KernelVMNodes says whether any node runs in a kernel VM of its own (as
// its provider says): such a node (TCG here) sets the pace of anything
// spread over every node.
func (f *Framework) KernelVMNodes() bool {
	return slices.ContainsFunc(f.Cluster.Nodes(), func(n clusters.Node) bool { return n.Kernel == clusters.KernelVM })
}

// NodeInKernelVM says whether node runs in a kernel VM of its own.
func (f *Framework) NodeInKernelVM(node string) bool {
	return slices.ContainsFunc(f.Cluster.Nodes(), func(n clusters.Node) bool { return n.Name == node && n.Kernel == clusters.KernelVM })
}

// NodeMode is the mode node was made to run: on a mixed cluster the
// specs ask it per node, never f.Mode.
func (f *Framework) NodeMode(node string) (string, error) { return f.nodeMode(node) }

// NodeIP is a node's address on the underlay.
func (f *Framework) NodeIP(node string) (string, error) {
	for _, n := range f.Cluster.Nodes() {
		if n.Name == node {
			return n.IP, nil
		}
	}
	return "", fmt.Errorf("cluster %s: no node %q", f.Cluster.Name(), node)
}
