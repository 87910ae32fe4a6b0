// Package clusters is the one seam between the suites and the clusters they
// test: a Provider makes (or finds) a Cluster from a Spec, and the suites
// speak only to these interfaces and to client-go. It must never import a
// concrete provider; providers import it.
package clusters

import (
	"context"
	"errors"

	"k8s.io/client-go/rest"
)

// Proxier modes a node can run.
const (
	ModeIPTables = "iptables"
	ModeNFTables = "nftables"
	ModeIPVS     = "ipvs"
	// ModeExisting asks for no mode: the nodes of a cluster the suite did
	// not make run what they run, and the mode census finds out what.
	ModeExisting = "existing"
)

// Proxiers a provider deploys: ours, upstream kube-proxy built from source,
// or (Spec.Proxier) the path of any kube-proxy-compatible binary.
const (
	ProxierOurs      = "ours"
	ProxierKubeProxy = "kube-proxy"
	// ProxierExisting tests the proxier a cluster the suite did not make
	// already runs (kubeconfig provider).
	ProxierExisting = "existing"
)

// Probe is the name of the probe program (suites/framework/cmd/netprobe)
// in argv[0] of ExecOnNode, ExecInPod and ExecOutside: every provider makes
// it runnable on its nodes, in the suite's test pods and outside the nodes.
const Probe = "netprobe"

// NodeSpec is what one node should be.
type NodeSpec struct {
	// Mode is the proxier mode of the node (ModeIPTables, ...).
	Mode string
	// Kernel is the kernel the node runs on: KernelAuto (""), KernelHost
	// or KernelVM. A provider that cannot honour it refuses the spec in
	// Check (and Precheck), naming NODE_KERNELS.
	Kernel string
}

// Spec is the cluster a run asks for.
type Spec struct {
	// Name is unique among the provider's clusters on this machine.
	Name  string
	Nodes []NodeSpec
	// Proxier is ProxierOurs, ProxierKubeProxy, ProxierExisting or a path.
	Proxier string
	// Keep leaves the cluster running after the suite (KEEP=1).
	Keep bool
	// Kubeconfig is the path of a kubeconfig reaching a cluster the
	// suite did not make, Context the context in it to use (empty: its
	// current context): the kubeconfig provider's input, which the
	// terraform provider fills from its module's outputs. Providers that
	// make their clusters leave them empty.
	Kubeconfig string
	Context    string
	// BackendImage is the image of the suite's backend and client pods
	// (netserver, with netprobe on its PATH); empty is
	// DefaultBackendImage. A foreign cluster pulls it from the user's
	// registry.
	BackendImage string
	// TakeOver allows the kubeconfig provider to move the cluster's own
	// kube-proxy aside on the tested nodes to deploy Proxier there (and
	// to put it back afterwards); without it a foreign cluster's proxier
	// is only tested, never replaced.
	TakeOver bool
	// Images are images of the local image store (Docker) every node must
	// hold before any pod starts, under these exact names, so nothing is
	// pulled: upstream's test images for make conformance. A provider that
	// cannot put images on its nodes refuses a spec that names any in Check.
	Images []string
}

// DefaultBackendImage is the suite's test server image, built here by
// make images (or make kind-images).
const DefaultBackendImage = "proxyproof/netserver:latest"

// Node is one node of a running cluster.
type Node struct {
	Name string
	// IP is the node's address on the cluster network: what other nodes and
	// the outside client reach (NodePort traffic goes here).
	IP string
	// Mode is the mode the node was made to run; the census reads what it
	// really runs.
	Mode string
	// Kernel is the kernel the node runs on as its provider knows it:
	// KernelHost, KernelVM, or "" when the provider cannot say (a cluster
	// the suite did not make).
	Kernel string
}

// Cluster is a running cluster under test.
type Cluster interface {
	// Name is the cluster's name; Provider the name of who made it.
	Name() string
	Provider() string
	// Kubeconfig is the path of an admin kubeconfig; RestConfig its config.
	Kubeconfig() string
	RestConfig() (*rest.Config, error)
	// Nodes lists the nodes in a stable order.
	Nodes() []Node
	// ExecOnNode runs cmd in the node's host network namespace (as a
	// hostNetwork pod would see it). cmd[0] may be Probe.
	ExecOnNode(ctx context.Context, node string, cmd ...string) ([]byte, error)
	// ExecInPod runs cmd in pod ns/name's network namespace. cmd[0] may be
	// Probe; on providers with real containers the pod's image carries it.
	ExecInPod(ctx context.Context, ns, name string, cmd ...string) ([]byte, error)
	// ExecOutside runs cmd on a client that is on the node network but is
	// no node. cmd[0] may be Probe.
	ExecOutside(ctx context.Context, cmd ...string) ([]byte, error)
	// OutsideIP is the outside client's source address.
	OutsideIP() string
	// RouteOutside sends the outside client's traffic for ip to node, as
	// the network in front of a cluster does for external IPs.
	RouteOutside(ctx context.Context, ip, node string) error
	// Destroy removes everything the provider made for the cluster; a
	// cluster the provider did not make is left as it was found.
	Destroy(ctx context.Context) error
}

// Limited is a Cluster that cannot give every access the interface
// promises (a cluster the suite did not make: no client outside the
// nodes; no privileged pods where the cluster forbids them). Each method
// is nil when the access works, else the reason; the suites skip the
// specs that need it with that reason.
type Limited interface {
	NodeAccess() error
	OutsideAccess() error
}

// RunningProxier is an optional capability of a Cluster whose provider
// knows which proxier it runs better than the run's PROXIER does: a
// Terraform module's own cluster, handed to the kubeconfig provider, runs
// whatever it runs (ProxierExisting) though PROXIER said ours, and the
// report named ours for a cluster running kube-proxy.
type RunningProxier interface {
	// RunningProxier is ProxierOurs, ProxierKubeProxy, ProxierExisting or
	// a binary's path.
	RunningProxier() string
}

// ProxierLogs is an optional capability of a Cluster: the log of a
// node's proxier, for a failed spec's dumps (what the proxier said while
// the spec failed: a live switch's drain, a sync's error).
type ProxierLogs interface {
	// ProxierLog is the last maxBytes of node's proxier log (from its
	// current process on, or from every process the node's proxier ran
	// where restarts append to one log).
	ProxierLog(ctx context.Context, node string, maxBytes int64) ([]byte, error)
}

// Provider makes clusters.
type Provider interface {
	// Name is what PROVIDER= says (local, kind, kubeconfig, terraform).
	Name() string
	// Check refuses a spec the provider cannot run, before anything exists,
	// with an error naming the parameter and what would work.
	Check(spec Spec) error
	// Create brings the cluster up with the proxier deployed on every node.
	Create(ctx context.Context, spec Spec) (Cluster, error)
}

// Attacher is a provider that can hand back a cluster it made earlier,
// by name, so that several suite runs share one cluster (make validate:
// the suite in one mode, a live switch, the suite in the other). The
// caller that attaches never destroys: whoever created the cluster does.
type Attacher interface {
	Attach(name string) (Cluster, error)
}

// Prechecker is a provider that can refuse a spec before any set-up has
// run: no engine, image or binary needed yet, only the machine and the
// parameters (a mode this host's kernel cannot give the provider's nodes, a
// proxier it cannot deploy). The runner asks it before it builds anything;
// Check, after set-up, asks the rest.
type Prechecker interface {
	Precheck(spec Spec) error
}

// SetupNeeder is a provider with set-up of its own on this machine before
// Check can pass (images, an engine): commands from the repository root,
// each idempotent and quick when done, that the runner runs for the specs
// of a run after the parameters are checked.
type SetupNeeder interface {
	SetupSteps(specs []Spec) []string
}

// KubeletProvider is a provider whose nodes run a real kubelet and
// container runtime: pods of any image, exec into containers, logs,
// hostNetwork and privileged pods, as upstream's e2e specs (make
// conformance) need. A provider that is not one (local: pods are
// processes a node agent runs) is refused by name for those specs.
type KubeletProvider interface {
	RealKubelet() bool
}

// ErrModeUnsupported is wrapped by a provider's error for a mode this
// machine cannot give its nodes (ipvs where the nodes share a kernel
// without ip_vs): MODE=all leaves such a mode out, saying why.
var ErrModeUnsupported = errors.New("mode not supported by the host kernel")

// Labels on every namespace a run of the suite makes: the kubeconfig
// provider deletes them at the end, and what an interrupted run left on
// the next run, finding them by these labels only.
const (
	LabelOwner = "proxyproof.dev/owner"
	OwnerSuite = "proxyproof-suite"
	LabelRun   = "proxyproof.dev/run"
)

// OwnedLabels are the labels of a namespace made by run (Cluster.Name).
func OwnedLabels(run string) map[string]string {
	return map[string]string{LabelOwner: OwnerSuite, LabelRun: run}
}
