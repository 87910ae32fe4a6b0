package controlplane

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/proxyproof/proxyproof/clusters"
)

// DefaultVersion is the Kubernetes version hack/controlplane pins.
const DefaultVersion = "v1.34.4"

// buildHint is what a user runs when the binaries are missing.
const buildHint = "run hack/controlplane/build.sh"

// Paths are the executables of one control plane version.
type Paths struct {
	Dir               string // the version's bin directory in the cache
	APIServer         string
	ControllerManager string
	Scheduler         string
	// Proxy is upstream kube-proxy, the reference peer of the suites.
	Proxy   string
	Kubectl string
	// Etcd comes from the distribution (Debian etcd-server), found in PATH.
	Etcd string
}

// CacheDir is the root of the binary cache: $PROXYPROOF_CACHE or
// /var/cache/proxyproof. It lives outside the checkout so every worktree
// shares one build.
func CacheDir() string {
	if d := os.Getenv("PROXYPROOF_CACHE"); d != "" {
		return d
	}
	return "/var/cache/proxyproof"
}

// BinDir is where hack/controlplane/build.sh puts version's binaries.
func BinDir(version string) string {
	return filepath.Join(CacheDir(), "k8s", version, "bin")
}

// Binaries finds the executables of version ("" = DefaultVersion). The
// error names every missing file and says how to build them.
func Binaries(version string) (Paths, error) {
	if version == "" {
		version = DefaultVersion
	}
	dir := BinDir(version)
	p := Paths{
		Dir:               dir,
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		Proxy:             filepath.Join(dir, "kube-proxy"),
		Kubectl:           filepath.Join(dir, "kubectl"),
	}
	var missing []error
	for _, f := range []string{p.APIServer, p.ControllerManager, p.Scheduler, p.Proxy, p.Kubectl} {
		if err := clusters.Executable(f); err != nil {
			missing = append(missing, err)
		}
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		missing = append(missing, fmt.Errorf("etcd not in PATH (Debian package etcd-server): %w", err))
	}
	p.Etcd = etcd
	if len(missing) > 0 {
		return p, fmt.Errorf("kubernetes %s control plane binaries incomplete (%s): %w", version, buildHint, errors.Join(missing...))
	}
	return p, nil
}
