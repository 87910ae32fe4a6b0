package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters"
)

// ProviderName is what PROVIDER= says.
const ProviderName = "kubeconfig"

// EnvToolsImage names another image for the helper's tools container.
const EnvToolsImage = "TOOLS_IMAGE"

// DefaultStateRoot holds a directory per run (the context's kubeconfig).
const DefaultStateRoot = "/run/proxyproof/kubeconfig"

// Provider reaches clusters it did not make. The zero value is not
// ready; use NewProvider.
type Provider struct {
	// ToolsImage is the helper's tools image (TOOLS_IMAGE, default ours).
	ToolsImage string
	StateRoot  string
}

var (
	_ clusters.Provider   = &Provider{}
	_ clusters.Prechecker = &Provider{}
)

// NewProvider is the provider with the tools image from TOOLS_IMAGE.
func NewProvider() *Provider {
	img := os.Getenv(EnvToolsImage)
	if img == "" {
		img = DefaultToolsImage
	}
	return &Provider{ToolsImage: img, StateRoot: DefaultStateRoot}
}

// Name is "kubeconfig".
func (p *Provider) Name() string { return ProviderName }

// Precheck is Check: it needs nothing set up on this machine, and creates
// nothing in the cluster.
func (p *Provider) Precheck(spec clusters.Spec) error { return p.Check(spec) }

// Check refuses, before anything is created, a spec this provider cannot
// run: the parameters, then the kubeconfig, the context, the API server
// and the permissions the suite needs.
func (p *Provider) Check(spec clusters.Spec) error {
	if err := checkSpec(spec); err != nil {
		return err
	}
	a, err := load(spec.Kubeconfig, spec.Context)
	if err != nil {
		return err
	}
	return a.check(context.Background(), spec.TakeOver)
}

// checkSpec is Check's part that needs no cluster.
func checkSpec(spec clusters.Spec) error {
	if spec.Name == "" {
		return errors.New("PROVIDER=kubeconfig: the run has no name")
	}
	for i, n := range spec.Nodes {
		if n.Mode != "" && n.Mode != clusters.ModeExisting && !isMode(n.Mode) {
			return fmt.Errorf("node %d: mode %q: want %s, %s, %s or %s (whatever the nodes run)", i+1, n.Mode,
				clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS, clusters.ModeExisting)
		}
	}
	switch spec.Proxier {
	case clusters.ProxierExisting, "":
		return nil
	case clusters.ProxierOurs, clusters.ProxierKubeProxy:
		if !spec.TakeOver {
			return fmt.Errorf("PROXIER=%s on a cluster the suite did not make replaces its kube-proxy on the tested nodes: opt in with TAKE_OVER=1 (kube-proxy is put back afterwards), or test what it runs with PROXIER=%s",
				spec.Proxier, clusters.ProxierExisting)
		}
		if wantedMode(spec) == "" {
			return fmt.Errorf("PROXIER=%s TAKE_OVER=1: name the mode to deploy it in with MODE=%s, %s or %s", spec.Proxier,
				clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS)
		}
		return nil
	default:
		return fmt.Errorf("PROXIER=%s: a cluster reached through a kubeconfig runs a proxier from an image, not a binary of this machine: use PROXIER=%s, or %s / %s with TAKE_OVER=1",
			spec.Proxier, clusters.ProxierExisting, clusters.ProxierOurs, clusters.ProxierKubeProxy)
	}
}

// Create sets the run up in the cluster: leftovers of interrupted runs
// removed, the run's namespace, the node helper, each node's mode found
// (and checked against spec's, if it names one). On failure it removes
// what it made, unless spec.Keep.
func (p *Provider) Create(ctx context.Context, spec clusters.Spec) (clusters.Cluster, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	a, err := load(spec.Kubeconfig, spec.Context)
	if err != nil {
		return nil, err
	}
	if err := a.check(ctx, spec.TakeOver); err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(a.cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: client: %w", a, err)
	}
	if _, err := cleanLeftovers(ctx, client, false); err != nil {
		return nil, err
	}
	c := &Cluster{name: spec.Name, acc: a, client: client, ns: suiteNamespace(spec.Name), keep: spec.Keep, dir: filepath.Join(p.StateRoot, spec.Name),
		proxier: clusters.ProxierExisting}
	if spec.TakeOver {
		c.proxier = spec.Proxier
	}
	if err := createSuiteNamespace(ctx, client, spec.Name); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := c.setUp(ctx, spec, p.ToolsImage); err != nil {
		if spec.Keep {
			return nil, fmt.Errorf("%w (KEEP=1: namespace %s left for a look; make cluster-down PROVIDER=kubeconfig removes it)", err, c.ns)
		}
		return nil, errors.Join(err, c.Destroy(ctx))
	}
	klog.InfoS("Cluster reached", "cluster", c.name, "context", a.context, "server", a.server, "nodes", len(c.nodes), "nodeAccess", c.noNode == nil, "took", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// setUp finds the nodes, starts the helper, takes over if asked, and
// finds each node's mode.
func (c *Cluster) setUp(ctx context.Context, spec clusters.Spec, toolsImage string) error {
	if err := c.writeKubeconfig(); err != nil {
		return err
	}
	if err := c.findNodes(ctx); err != nil {
		return err
	}
	backend := spec.BackendImage
	if backend == "" {
		backend = clusters.DefaultBackendImage
	}
	podSpec := helperPodSpec(toolsImage, backend)
	if err := mayRunHelper(ctx, c.client, c.ns, podSpec); err != nil {
		if !errors.Is(err, ErrNoNodeAccess) {
			return err
		}
		klog.InfoS("No node access: specs that need it are skipped", "cluster", c.name, "reason", err)
		c.noNode = err
	} else if c.helpers, err = startHelper(ctx, c.client, c.ns, podSpec, c.nodeNames()); err != nil {
		return err
	}
	if spec.Proxier == clusters.ProxierOurs || spec.Proxier == clusters.ProxierKubeProxy {
		if err := c.takeOverFor(ctx, spec, toolsImage); err != nil {
			return err
		}
	}
	return c.findModes(ctx, wantedMode(spec))
}

// takeOverFor runs spec's proxier in place of the cluster's kube-proxy
// on the tested nodes (takeover.go), after finding what they run now.
func (c *Cluster) takeOverFor(ctx context.Context, spec clusters.Spec, image string) error {
	if c.noNode != nil {
		return fmt.Errorf("TAKE_OVER=1 needs node access to find and check each node's mode and to clean the nodes afterwards: %w", c.noNode)
	}
	before := map[string]string{}
	for _, n := range c.nodeNames() {
		m, err := c.modeOf(ctx, n)
		if err != nil {
			return fmt.Errorf("cluster %s: TAKE_OVER=1: %w", c.name, err)
		}
		before[n] = m
	}
	return c.takeOverNodes(ctx, spec.Proxier, wantedMode(spec), image, before)
}

// findNodes lists the Ready nodes that take pods, by name.
func (c *Cluster) findNodes(ctx context.Context) error {
	list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("%s: nodes: %w", c.acc, err)
	}
	for _, n := range list.Items {
		if !schedulable(n) {
			continue
		}
		c.nodes = append(c.nodes, clusters.Node{Name: n.Name, IP: internalIP(n)})
	}
	slices.SortFunc(c.nodes, func(a, b clusters.Node) int { return cmpString(a.Name, b.Name) })
	if len(c.nodes) == 0 {
		return fmt.Errorf("%s: no Ready node takes pods (of %d nodes)", c.acc, len(list.Items))
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// schedulable: Ready, not cordoned, no NoSchedule/NoExecute taint, Linux.
func schedulable(n corev1.Node) bool {
	if n.Spec.Unschedulable || (n.Labels[corev1.LabelOSStable] != "" && n.Labels[corev1.LabelOSStable] != "linux") {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func (c *Cluster) nodeNames() []string {
	var names []string
	for _, n := range c.nodes {
		names = append(names, n.Name)
	}
	return names
}

// findModes records each node's mode and refuses a node whose mode is
// not want (when want is set). Without node access the mode is want, as
// declared, or unknown.
func (c *Cluster) findModes(ctx context.Context, want string) error {
	for i, n := range c.nodes {
		if c.noNode != nil {
			c.nodes[i].Mode = want
			continue
		}
		m, err := c.modeOf(ctx, n.Name)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.name, err)
		}
		if want != "" && m != want {
			return fmt.Errorf("cluster %s: node %s runs %s, not MODE=%s: choose MODE=%s or MODE=%s (whatever each node runs)", c.name, n.Name, m, want, m, clusters.ModeExisting)
		}
		c.nodes[i].Mode = m
	}
	return nil
}
