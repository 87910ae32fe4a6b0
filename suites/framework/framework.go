package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/proxyproof/proxyproof/clusters/local"
)

// Framework is one mode's cluster and what the specs need to drive it.
type Framework struct {
	Params
	Cluster *local.Cluster
	Client  kubernetes.Interface
	// Netprobe is the probe binary (cmd/netprobe) run inside pods and nodes.
	Netprobe string
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

// Setup builds the probe binary and brings up the mode's cluster.
func Setup(ctx context.Context, p Params) (*Framework, error) {
	if err := os.MkdirAll(p.ModeDir(), 0o755); err != nil {
		return nil, fmt.Errorf("mode dir: %w", err)
	}
	probe := filepath.Join(p.ModeDir(), "bin", "netprobe")
	build := exec.CommandContext(ctx, "go", "build", "-o", probe, "github.com/proxyproof/proxyproof/suites/framework/cmd/netprobe")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build netprobe: %w: %s", err, out)
	}
	// KEEP=1 must leave a working cluster, so its processes must outlive
	// the suite binary (by default they die with it).
	spec := local.Spec{Name: ClusterName(p.Mode), Proxier: p.Proxier, OutliveCaller: p.Keep}
	for i := 0; i < p.Nodes; i++ {
		spec.Nodes = append(spec.Nodes, local.NodeSpec{Mode: p.Mode})
	}
	began := time.Now()
	c, err := local.Create(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("cluster %s (%d %s nodes, proxier %s): %w", spec.Name, p.Nodes, p.Mode, p.Proxier, err)
	}
	klog.InfoS("Cluster up", "cluster", c.Name(), "mode", p.Mode, "proxier", p.Proxier, "took", time.Since(began).Round(time.Millisecond))
	client, err := c.Client()
	if err != nil {
		_ = c.Destroy(ctx)
		return nil, err
	}
	// Probes run on every node, kernel-VM nodes included, which see the
	// host's files as they were at boot except the cluster's state dir.
	if probe, err = installProgram(probe, c.Bin("netprobe")); err != nil {
		_ = c.Destroy(ctx)
		return nil, err
	}
	f := &Framework{Params: p, Cluster: c, Client: client, Netprobe: probe}
	if err := f.writeEnvironment(); err != nil {
		klog.ErrorS(err, "Environment not recorded", "dir", p.ModeDir())
	}
	return f, nil
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
	if f.Keep {
		klog.InfoS("Keeping the cluster (KEEP=1)", "cluster", f.Cluster.Name(), "kubeconfig", f.Cluster.Kubeconfig(),
			"down", "make cluster-down NAME="+f.Cluster.Name())
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

// NodeIP is a node's address on the underlay.
func (f *Framework) NodeIP(node string) (string, error) {
	for _, n := range f.Cluster.Nodes() {
		if n.Name == node {
			return n.IP, nil
		}
	}
	return "", fmt.Errorf("cluster %s: no node %q", f.Cluster.Name(), node)
}

// installProgram copies the executable src to dst and returns dst.
func installProgram(src, dst string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("install %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	return dst, nil
}
