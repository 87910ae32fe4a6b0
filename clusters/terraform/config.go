package terraform

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
)

// The parameters, as make e2e passes them in the environment.
const (
	EnvDir  = "TF_DIR"  // the root module
	EnvVars = "TF_VARS" // comma-separated k=v and .tfvars files
	EnvBin  = "TF_BIN"  // tofu (default: ours, built from source), terraform, or a path
)

// Config is one run's parameters, checked.
type Config struct {
	// Dir is the root module, absolute.
	Dir string
	// Vars are -var k=v; VarFiles -var-file paths (absolute).
	Vars     []string
	VarFiles []string
	// Bin is "" for our built tofu (found after set-up), else a path.
	Bin string
}

// ConfigFromEnv reads and checks the parameters with lookup.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	var c Config
	var err error
	if c.Dir, err = checkDir(get(EnvDir)); err != nil {
		return c, err
	}
	if c.Vars, c.VarFiles, err = parseVars(get(EnvVars)); err != nil {
		return c, err
	}
	c.Bin, err = resolveBin(get(EnvBin))
	return c, err
}

// paramError names the parameter, the value and the fix, as
// framework.ParamError does (this package may not import the suites).
func paramError(name, value, want string) error {
	return fmt.Errorf("%s=%q: want %s", name, value, want)
}

// checkDir accepts a directory holding a root module (*.tf or *.tf.json).
func checkDir(dir string) (string, error) {
	if dir == "" {
		return "", paramError(EnvDir, dir, "the directory of a Terraform/OpenTofu root module whose outputs give the kubeconfig "+
			"(e.g. TF_DIR=clusters/terraform/examples/kind-iptables)")
	}
	abs, err := absolute(dir)
	if err != nil {
		return "", fmt.Errorf("%s=%q: %w", EnvDir, dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.IsDir() {
		return "", paramError(EnvDir, dir, "an existing directory holding a root module (it does not exist or is no directory)")
	}
	tf, _ := filepath.Glob(filepath.Join(abs, "*.tf"))
	tfjson, _ := filepath.Glob(filepath.Join(abs, "*.tf.json"))
	if len(tf)+len(tfjson) == 0 {
		return "", paramError(EnvDir, dir, "a directory with a root module (it has no *.tf or *.tf.json file)")
	}
	return abs, nil
}

// parseVars splits TF_VARS: comma-separated items, each k=v (a -var) or
// the path of a .tfvars / .tfvars.json file (a -var-file). A value with a
// comma goes in a file.
func parseVars(s string) (vars, files []string, err error) {
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case strings.HasSuffix(item, ".tfvars") || strings.HasSuffix(item, ".tfvars.json"):
			abs, err := absolute(item)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", EnvVars, item, err)
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, nil, paramError(EnvVars, s, fmt.Sprintf("k=v items and existing .tfvars files (%s does not exist)", item))
			}
			files = append(files, abs)
		default:
			k, _, ok := strings.Cut(item, "=")
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return nil, nil, paramError(EnvVars, s, fmt.Sprintf("comma-separated k=v items or .tfvars files (%q is neither)", item))
			}
			vars = append(vars, item)
		}
	}
	return vars, files, nil
}

// resolveBin is "" for our built tofu, else the binary's absolute path.
func resolveBin(bin string) (string, error) {
	if bin == "" || bin == "tofu" {
		// Ours (hack/tofu/build.sh), built by the set-up step; a tofu on
		// PATH is not preferred over it: the pinned version is the one
		// tested.
		return "", nil
	}
	path := bin
	if strings.Contains(bin, "/") {
		var err error
		if path, err = absolute(bin); err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvBin, bin, err)
		}
	}
	path, err := exec.LookPath(path)
	if err != nil {
		return "", paramError(EnvBin, bin, "tofu (ours, built by hack/tofu/build.sh), terraform, or the path of either binary ("+err.Error()+")")
	}
	if err := clusters.Executable(path); err != nil {
		return "", paramError(EnvBin, bin, "an executable terraform or tofu binary ("+err.Error()+")")
	}
	return filepath.Abs(path)
}

// absolute resolves a relative path against the checkout's root, where
// make runs: the suite reads the parameters in its own directory
// (suites/services), the runner in the root, and both must mean the same.
// Outside a checkout, against the working directory.
func absolute(path string) (string, error) {
	if filepath.IsAbs(path) {
		return filepath.Clean(path), nil
	}
	if root, err := clusters.SourceDir(); err == nil {
		return filepath.Join(root, path), nil
	}
	return filepath.Abs(path)
}

// tofuCache is where hack/tofu/build.sh puts our tofu.
func tofuCache() string {
	root := os.Getenv("PROXYPROOF_CACHE")
	if root == "" {
		root = "/var/cache/proxyproof"
	}
	return filepath.Join(root, "tofu", TofuVersion, "tofu")
}

// TofuVersion is the OpenTofu hack/tofu/build.sh builds.
const TofuVersion = "v1.12.6"

// bin is the binary to run: c.Bin, or our built tofu.
func (c Config) bin() (string, error) {
	if c.Bin != "" {
		return c.Bin, nil
	}
	p := tofuCache()
	if err := clusters.Executable(p); err != nil {
		return "", paramError(EnvBin, "tofu", "our OpenTofu "+TofuVersion+", built by hack/tofu/build.sh (make deps runs it): "+err.Error())
	}
	return p, nil
}
