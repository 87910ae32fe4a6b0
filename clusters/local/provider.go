package local

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
)

// ProviderName is what PROVIDER= says for this provider.
const ProviderName = "local"

// Provider is the local provider behind the clusters seam, what the suites
// get for PROVIDER=local. Local's own richer API (Create, Open, *Cluster)
// stays for its tests and commands.
type Provider struct{}

var (
	_ clusters.Provider = Provider{}
	_ clusters.Cluster  = seamCluster{}
)

// Name is ProviderName.
func (Provider) Name() string { return ProviderName }

// Check refuses what Create would refuse, before anything exists.
func (Provider) Check(spec clusters.Spec) error {
	s, err := localSpec(spec)
	if err != nil {
		return err
	}
	return s.withDefaults().validate()
}

// Create brings the cluster up (Create) and returns it behind the seam.
func (Provider) Create(ctx context.Context, spec clusters.Spec) (clusters.Cluster, error) {
	s, err := localSpec(spec)
	if err != nil {
		return nil, err
	}
	c, err := Create(ctx, s)
	if err != nil {
		return nil, err
	}
	return seamCluster{c}, nil
}

var _ clusters.Attacher = Provider{}

// Attach opens the running cluster name (made by Create, in this process
// or another) behind the seam.
func (Provider) Attach(name string) (clusters.Cluster, error) {
	c, err := Open(name)
	if err != nil {
		return nil, err
	}
	return seamCluster{c}, nil
}

// localSpec is spec in local's terms. A kept cluster's processes must
// outlive the suite binary (by default they die with it).
func localSpec(spec clusters.Spec) (Spec, error) {
	if spec.Proxier == clusters.ProxierExisting {
		return Spec{}, fmt.Errorf("cluster %s: proxier %q: a local cluster runs the proxier it is given (%s, %s or a path); %q is for a cluster the suite did not make",
			spec.Name, spec.Proxier, ProxierOurs, ProxierKubeProxy, clusters.ProxierExisting)
	}
	if len(spec.Images) > 0 {
		// Its node agent maps known image names to built-in programs and
		// runs no image (doc.go): it cannot honour a list of images.
		return Spec{}, fmt.Errorf("cluster %s: images %s: local nodes run no container images; use PROVIDER=kind",
			spec.Name, strings.Join(spec.Images, ", "))
	}
	s := Spec{Name: spec.Name, Proxier: spec.Proxier, OutliveCaller: spec.Keep}
	for _, n := range spec.Nodes {
		s.Nodes = append(s.Nodes, NodeSpec{Mode: n.Mode, Kernel: n.Kernel})
	}
	return s, nil
}

// seamCluster is a *Cluster as clusters.Cluster: the node list in the
// seam's terms, and the probe named clusters.Probe resolved to the copy
// Create built into the cluster's bin dir, which every node sees (VM
// nodes included: the state dir is shared with them) and which runs in a
// pod's namespace because pods here share the host's files.
type seamCluster struct{ *Cluster }

// Provider is ProviderName.
func (seamCluster) Provider() string { return ProviderName }

// Nodes lists the nodes in creation order.
func (s seamCluster) Nodes() []clusters.Node {
	var nodes []clusters.Node
	for _, n := range s.Cluster.Nodes() {
		kernel := KernelHost
		if n.VM {
			kernel = KernelVM
		}
		nodes = append(nodes, clusters.Node{Name: n.Name, IP: n.IP, Mode: n.Mode, Kernel: kernel})
	}
	return nodes
}

// OutsideIP is the underlay bridge's address (OutsideIP).
func (seamCluster) OutsideIP() string { return OutsideIP }

func (s seamCluster) ExecOnNode(ctx context.Context, node string, cmd ...string) ([]byte, error) {
	return s.Cluster.ExecOnNode(ctx, node, s.resolve(cmd)...)
}

func (s seamCluster) ExecInPod(ctx context.Context, ns, name string, cmd ...string) ([]byte, error) {
	return s.Cluster.ExecInPod(ctx, ns, name, s.resolve(cmd)...)
}

func (s seamCluster) ExecOutside(ctx context.Context, cmd ...string) ([]byte, error) {
	return s.Cluster.ExecOutside(ctx, s.resolve(cmd)...)
}

// resolve maps argv[0] clusters.Probe to the built probe.
func (s seamCluster) resolve(cmd []string) []string {
	if len(cmd) == 0 || cmd[0] != clusters.Probe {
		return cmd
	}
	return append([]string{s.Bin(clusters.Probe)}, cmd[1:]...)
}

var (
	_ clusters.SetupNeeder = Provider{}
	_ clusters.Prechecker  = Provider{}
)

// Precheck is Check without what set-up provides (the control plane, the
// kernel VM image): the names, modes, kernels and proxier.
func (Provider) Precheck(spec clusters.Spec) error {
	s, err := localSpec(spec)
	if err != nil {
		return err
	}
	s = s.withDefaults()
	for _, n := range s.Nodes {
		if err := nodeKernelSupports(n, false); err != nil {
			return fmt.Errorf("cluster %s: node %s: %w", s.Name, n.Name, err)
		}
	}
	return nil
}

// SetupSteps are the scripts runs of specs need here: the Debian
// packages, the control plane, and the kernel VM image only when a node
// runs in the VM (NODE_KERNELS=vm, or ipvs on a kernel without ip_vs).
func (Provider) SetupSteps(specs []clusters.Spec) []string {
	var kernels []string
	for _, spec := range specs {
		s, err := localSpec(spec)
		if err != nil {
			continue // Check refuses it later, saying why
		}
		for _, n := range s.withDefaults().Nodes {
			kernels = append(kernels, n.Kernel)
		}
	}
	return setupSteps(kernels)
}

func setupSteps(kernels []string) []string {
	steps := []string{"hack/install-deps.sh", "hack/controlplane/build.sh"}
	if slices.Contains(kernels, KernelVM) {
		steps = append(steps, "hack/vm/build-image.sh")
	}
	return steps
}
