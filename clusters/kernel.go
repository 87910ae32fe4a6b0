package clusters

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Kernels a node can run on (NodeSpec.Kernel, Node.Kernel).
const (
	// KernelAuto leaves it to the provider: the host's kernel, or a VM
	// where the node's mode needs what the host's kernel lacks (local
	// ipvs nodes on a kernel without ip_vs).
	KernelAuto = ""
	// KernelHost is the kernel of the machine running the suite, shared
	// by every node on it: a setting global to the kernel
	// (nf_conntrack_max) is the machine's.
	KernelHost = "host"
	// KernelVM is a kernel of the node's own, in a VM: its global settings
	// are the node's alone.
	KernelVM = "vm"
)

// EnvNodeKernels is the parameter (make e2e, make cluster-up) that
// chooses each node's kernel.
const EnvNodeKernels = "NODE_KERNELS"

// kernelWords are what NODE_KERNELS accepts per node; "auto" is KernelAuto.
var kernelWords = []string{"auto", KernelHost, KernelVM}

// ParseNodeKernels reads NODE_KERNELS for a cluster of nodes nodes: empty
// (nil: every node KernelAuto), one word for every node, or one word per
// node in node order, comma-separated; each word auto, host or vm. It
// returns one Kernel per node.
func ParseNodeKernels(list string, nodes int) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	out := make([]string, nodes)
	words := strings.Split(list, ",")
	if len(words) != 1 && len(words) != nodes {
		return nil, fmt.Errorf("%d values for %d nodes: give one value for every node or one per node, in node order", len(words), nodes)
	}
	for i := range out {
		w := strings.TrimSpace(words[min(i, len(words)-1)])
		if !slices.Contains(kernelWords, w) {
			return nil, fmt.Errorf("node %d: %q: want %s (a comma-separated list, one per node, or one for all)", i+1, w, strings.Join(kernelWords, ", "))
		}
		if w != "auto" {
			out[i] = w
		}
	}
	return out, nil
}

// NodeKernelsParam is kernels as NODE_KERNELS says them, for a child
// process to parse again.
func NodeKernelsParam(kernels []string) string {
	words := make([]string, len(kernels))
	for i, k := range kernels {
		words[i] = k
		if k == KernelAuto {
			words[i] = "auto"
		}
	}
	return strings.Join(words, ",")
}

// ErrNodeKernelUnsupported is wrapped by a provider's error for a node
// kernel it cannot give (NODE_KERNELS=vm where nodes share the host's).
var ErrNodeKernelUnsupported = errors.New("node kernel not supported by the provider")

// HostKernelOnly is the error of a provider whose nodes all share the
// host's kernel, for a spec that asks for a node of its own (KernelVM).
func HostKernelOnly(provider string, spec Spec) error {
	for i, n := range spec.Nodes {
		switch n.Kernel {
		case KernelAuto, KernelHost:
		case KernelVM:
			return fmt.Errorf("cluster %s: node %d: %s=%s: %w: PROVIDER=%s nodes share the host's kernel and cannot have their own; use PROVIDER=local, whose nodes can run in the kernel VM, or leave %s out",
				spec.Name, i+1, EnvNodeKernels, n.Kernel, ErrNodeKernelUnsupported, provider, EnvNodeKernels)
		default:
			return fmt.Errorf("cluster %s: node %d: kernel %q: want %s or %s", spec.Name, i+1, n.Kernel, KernelHost, KernelVM)
		}
	}
	return nil
}

// KernelTuner is an optional capability of a Cluster the suite made, and
// so may change: write a kernel setting of the kernel a node runs on for
// the length of a spec, which restores it. A cluster the suite did not
// make (kubeconfig) lacks it: its nodes' kernels are not the suite's to
// change, and specs that need it skip there, saying so.
type KernelTuner interface {
	// SetSysctl writes sysctl name (dotted, net.netfilter.nf_conntrack_max)
	// to value as node's network namespace sees it and returns the value
	// it replaced. A setting global to a kernel, written for a node on
	// KernelHost, changes it for the whole machine: the caller decides
	// whether it may.
	SetSysctl(ctx context.Context, node, name, value string) (previous string, err error)
}

// SysctlByExec is SetSysctl for a provider that runs commands on a node
// (exec): sysctl(8) reads and writes name there. When sharesHost (the node
// is a namespace or container on this machine's kernel) and the node's
// namespace holds name read-only, as the kernel does for a global such as
// nf_conntrack_max, it is written in this machine's own namespace.
func SysctlByExec(ctx context.Context, exec func(ctx context.Context, cmd ...string) ([]byte, error), sharesHost bool, node, name, value string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/ =") {
		return "", fmt.Errorf("sysctl %q: want a dotted name such as net.netfilter.nf_conntrack_max", name)
	}
	out, err := exec(ctx, "sysctl", "-n", name)
	if err != nil {
		return "", fmt.Errorf("node %s: read %s: %w", node, name, err)
	}
	previous := strings.TrimSpace(string(out))
	_, err = exec(ctx, "sysctl", "-w", name+"="+value)
	if err == nil {
		return previous, nil
	}
	if !sharesHost {
		return previous, fmt.Errorf("node %s: %w", node, err)
	}
	path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if werr := os.WriteFile(path, []byte(value), 0o644); werr != nil {
		return previous, fmt.Errorf("node %s shares the host's kernel: %s=%s in its namespace: %w; in the host's: %w", node, name, value, err, werr)
	}
	return previous, nil
}
