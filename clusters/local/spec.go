package local

import (
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
)

// Proxier choices besides a path to any kube-proxy-compatible binary:
// the clusters package's, named here for local's own callers.
const (
	ProxierOurs      = clusters.ProxierOurs
	ProxierKubeProxy = clusters.ProxierKubeProxy
)

// Modes a node's proxier can run in (the clusters package's).
const (
	ModeIPTables = clusters.ModeIPTables
	ModeNFTables = clusters.ModeNFTables
	ModeIPVS     = clusters.ModeIPVS
)

// DefaultName is the cluster name when Spec.Name is empty.
const DefaultName = "proxyproof"

// maxNodes keeps node addresses (198.18.0.11 + i) below the sink's .254.
const maxNodes = 50

// Spec describes one local cluster. Zero values take the defaults below.
type Spec struct {
	// Name is the cluster name: at most 10 characters of [a-z0-9-]; it
	// prefixes every namespace of the cluster. Default "proxyproof".
	Name string
	// Nodes are the nodes in order: node i gets address 198.18.0.(10+i).
	// Default: 3 iptables nodes.
	Nodes []NodeSpec
	// Proxier is "ours" (default), "kube-proxy" (upstream, from the
	// control plane cache) or the path of a kube-proxy-compatible binary.
	Proxier string
	// StateDir holds everything the cluster writes; default
	// /run/proxyproof/<Name> (tmpfs: gone on reboot).
	StateDir string
	// SourceDir is the proxyproof module root the binaries are built from;
	// default: found by walking up from the working directory.
	SourceDir string
	// OutliveCaller keeps every process running when the calling process
	// exits (`localcluster up`); Destroy stops them later. By default they
	// die with the caller, so an aborted test leaves at most namespaces and
	// files, which the next Create of that name cleans.
	OutliveCaller bool
	// ReadyTimeout bounds Create from the start of the control plane to
	// every node and proxier ready; default 4 minutes.
	ReadyTimeout time.Duration
	// BuildTimeout bounds the build of the cluster's programs, which comes
	// first: seconds on a warm Go build cache (make deps warms it),
	// minutes on a cold one; default 20 minutes.
	BuildTimeout time.Duration
}

// NodeSpec is one node.
type NodeSpec struct {
	// Name is "node-N"; default node-<position, from 1>.
	Name string
	// Mode is the proxier mode: iptables (default), nftables or ipvs.
	Mode string
	// Kernel is KernelHost (a network namespace of this machine) or
	// KernelVM (the kernel VM, a kernel of its own, for any mode); the
	// default is the host unless the mode needs what its kernel lacks
	// (ipvs without ip_vs).
	Kernel string
}

// Kernels a node runs on (the clusters package's).
const (
	KernelHost = clusters.KernelHost
	KernelVM   = clusters.KernelVM
)

var (
	clusterNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$`)
	nodeNameRE    = regexp.MustCompile(`^node-[0-9]+$`)
)

func (s Spec) withDefaults() Spec {
	if s.Name == "" {
		s.Name = DefaultName
	}
	if len(s.Nodes) == 0 {
		s.Nodes = []NodeSpec{{}, {}, {}}
	}
	nodes := make([]NodeSpec, len(s.Nodes))
	for i, n := range s.Nodes {
		if n.Name == "" {
			n.Name = fmt.Sprintf("node-%d", i+1)
		}
		if n.Mode == "" {
			n.Mode = ModeIPTables
		}
		if n.Kernel == clusters.KernelAuto {
			n.Kernel = KernelHost
			if RunsInVM(n.Mode) {
				n.Kernel = KernelVM
			}
		}
		nodes[i] = n
	}
	s.Nodes = nodes
	if s.Proxier == "" {
		s.Proxier = ProxierOurs
	}
	if s.StateDir == "" {
		s.StateDir = StateDir(s.Name)
	}
	if s.ReadyTimeout == 0 {
		s.ReadyTimeout = 4 * time.Minute
	}
	if s.BuildTimeout == 0 {
		s.BuildTimeout = 20 * time.Minute
	}
	return s
}

// validate checks what can be checked before touching the machine,
// including whether the kernel has what each node's mode needs.
func (s Spec) validate() error {
	if !clusterNameRE.MatchString(s.Name) {
		return fmt.Errorf("cluster name %q: want 1 to 10 characters of [a-z0-9-], not starting or ending with '-'", s.Name)
	}
	if len(s.Nodes) > maxNodes {
		return fmt.Errorf("cluster %s: %d nodes, at most %d", s.Name, len(s.Nodes), maxNodes)
	}
	seen := map[string]bool{}
	for _, n := range s.Nodes {
		if !nodeNameRE.MatchString(n.Name) {
			return fmt.Errorf("cluster %s: node name %q: want node-N", s.Name, n.Name)
		}
		if seen[n.Name] {
			return fmt.Errorf("cluster %s: node %s listed twice", s.Name, n.Name)
		}
		seen[n.Name] = true
		if err := nodeKernelSupports(n, true); err != nil {
			return fmt.Errorf("cluster %s: node %s: %w", s.Name, n.Name, err)
		}
	}
	switch s.Proxier {
	case ProxierOurs, ProxierKubeProxy:
	default:
		if err := clusters.Executable(s.Proxier); err != nil {
			return fmt.Errorf("cluster %s: proxier %q is neither %q, %q nor an executable: %w", s.Name, s.Proxier, ProxierOurs, ProxierKubeProxy, err)
		}
	}
	if !filepath.IsAbs(s.StateDir) {
		return fmt.Errorf("cluster %s: state dir %q must be absolute", s.Name, s.StateDir)
	}
	return nil
}
