package terraform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
)

// The root module's outputs the driver reads. One of OutKubeconfig and
// OutKubeconfigPath is required; the rest are optional.
const (
	// OutKubeconfig is an admin kubeconfig's content.
	OutKubeconfig = "kubeconfig"
	// OutKubeconfigPath is the path of one on this machine.
	OutKubeconfigPath = "kubeconfig_path"
	// OutContext is the kubeconfig context to use (default: its current one).
	OutContext = "kubeconfig_context"
	// OutNodeModes is each node's intended mode: a map node name -> mode,
	// or a list in the order of the nodes' names.
	OutNodeModes = "node_modes"
	// OutClusterName and OutClusterProvider name a cluster our own
	// proxyproof_cluster made (local or kind).
	OutClusterName     = "cluster_name"
	OutClusterProvider = "cluster_provider"
)

// moduleOutputs is what the driver took from the outputs.
type moduleOutputs struct {
	// Kubeconfig is a path: the module's, or the run dir's copy of the
	// content the module gave.
	Kubeconfig string
	Context    string
	// NodeModes is by node name; NodeModeList in node order. At most one
	// is set.
	NodeModes    map[string]string
	NodeModeList []string
	// ClusterName and ClusterProvider are set when the module says our
	// provider made the cluster.
	ClusterName, ClusterProvider string
}

// readOutputs checks and reads the outputs of module dir; content is
// written into workDir/kubeconfig.
func readOutputs(out map[string]tfexec.OutputMeta, module, workDir string) (moduleOutputs, error) {
	var o moduleOutputs
	str := func(name string) (string, error) {
		var s string
		meta, ok := out[name]
		if !ok {
			return "", nil
		}
		if err := json.Unmarshal(meta.Value, &s); err != nil {
			return "", fmt.Errorf("module %s: output %q: want a string: %w", module, name, err)
		}
		return s, nil
	}
	content, err := str(OutKubeconfig)
	if err != nil {
		return o, err
	}
	path, err := str(OutKubeconfigPath)
	if err != nil {
		return o, err
	}
	switch {
	case content != "":
		o.Kubeconfig = filepath.Join(workDir, "kubeconfig")
		if err := os.WriteFile(o.Kubeconfig, []byte(content), 0o600); err != nil {
			return o, fmt.Errorf("module %s: output %q: %w", module, OutKubeconfig, err)
		}
	case path != "":
		if _, err := os.Stat(path); err != nil {
			return o, fmt.Errorf("module %s: output %q = %q: %w", module, OutKubeconfigPath, path, err)
		}
		o.Kubeconfig = path
	default:
		return o, fmt.Errorf("module %s has no output %q (a kubeconfig's content) or %q (its path), or they are empty; its outputs: %s",
			module, OutKubeconfig, OutKubeconfigPath, outputNames(out))
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{OutContext, &o.Context}, {OutClusterName, &o.ClusterName}, {OutClusterProvider, &o.ClusterProvider}} {
		if *f.to, err = str(f.name); err != nil {
			return o, err
		}
	}
	if meta, ok := out[OutNodeModes]; ok {
		if json.Unmarshal(meta.Value, &o.NodeModes) != nil && json.Unmarshal(meta.Value, &o.NodeModeList) != nil {
			return o, fmt.Errorf("module %s: output %q = %s: want a map of node name to mode, or a list of modes in node order", module, OutNodeModes, meta.Value)
		}
	}
	return o, nil
}

func outputNames(out map[string]tfexec.OutputMeta) string {
	if len(out) == 0 {
		return "none"
	}
	var names []string
	for n := range out {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
