package kind

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/hostkernel"
)

// ProviderName is what PROVIDER= says.
const ProviderName = "kind"

// Images of this repository (make kind-images builds them into the local
// Docker engine) and the variable that names another node image.
const (
	DefaultNodeImage = "proxyproof/kind-node:v1.34.4"
	ProxierImage     = "proxyproof/proxier:dev"
	KubeProxyImage   = "proxyproof/kube-proxy:v1.34.4"
	NetserverImage   = "proxyproof/netserver:latest"
	EnvNodeImage     = "KIND_NODE_IMAGE"
	// ourImagePrefix marks the images only make kind-images can provide;
	// any other node image (kindest/node) kind pulls itself if missing.
	ourImagePrefix = "proxyproof/"
)

// DefaultStateRoot holds one directory per cluster (kubeconfig, record).
const DefaultStateRoot = "/run/proxyproof/kind"

// ErrModeUnsupported is the clusters package's, named here for callers.
var ErrModeUnsupported = clusters.ErrModeUnsupported

// Provider makes kind clusters. The zero value is not ready; use
// NewProvider.
type Provider struct {
	// NodeImage is the node image (KIND_NODE_IMAGE, default ours).
	NodeImage string
	// StateRoot holds a directory per cluster.
	StateRoot string
	// hasIPVS and docker are the host as seen by Check; fields so tests
	// can stand in for a kernel with or without ip_vs, and for the engine.
	hasIPVS func() bool
	docker  func(ctx context.Context, args ...string) ([]byte, error)
}

var _ clusters.Provider = &Provider{}

// NewProvider is the kind provider with the node image from
// KIND_NODE_IMAGE (default DefaultNodeImage).
func NewProvider() *Provider {
	img := os.Getenv(EnvNodeImage)
	if img == "" {
		img = DefaultNodeImage
	}
	return &Provider{NodeImage: img, StateRoot: DefaultStateRoot, hasIPVS: hostkernel.HasIPVS, docker: docker}
}

// Name is "kind".
func (p *Provider) Name() string { return ProviderName }

// nameRE keeps cluster names valid as kind cluster names, container and
// Docker network names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// stateDir is the directory of cluster name.
func (p *Provider) stateDir(name string) string { return filepath.Join(p.StateRoot, name) }

// Check refuses a spec this machine cannot run, before anything exists.
func (p *Provider) Check(spec clusters.Spec) error {
	if err := checkSpec(spec, p.hasIPVS()); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		// The host rule for the cluster's bridge and the outside client's
		// routes (nsenter) need root, whatever the Docker socket allows.
		return errors.New("PROVIDER=kind needs root (a host firewall rule per cluster network, routes in the outside client's namespace)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.docker(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("PROVIDER=kind needs a Docker engine and none answers (run make kind-images, which starts one): %w", err)
	}
	return p.checkImages(ctx, spec)
}

// checkSpec is Check's part that needs no engine.
func checkSpec(spec clusters.Spec, hasIPVS bool) error {
	if !nameRE.MatchString(spec.Name) {
		return fmt.Errorf("cluster name %q: want 1-32 of [a-z0-9-], starting and ending with a letter or digit", spec.Name)
	}
	if len(spec.Nodes) == 0 {
		return fmt.Errorf("cluster %s: no nodes (NODES must be at least 1)", spec.Name)
	}
	for i, n := range spec.Nodes {
		if err := checkMode(n.Mode, hasIPVS); err != nil {
			return fmt.Errorf("cluster %s: node %d: %w", spec.Name, i+1, err)
		}
	}
	if err := clusters.HostKernelOnly(ProviderName, spec); err != nil {
		return err
	}
	switch spec.Proxier {
	case clusters.ProxierOurs, clusters.ProxierKubeProxy, ProxierKubeadm:
		return nil
	case clusters.ProxierExisting:
		return fmt.Errorf("PROXIER=%s: a kind cluster is made by the suite, so there is no existing proxier; use ours or kube-proxy", spec.Proxier)
	default:
		// A binary by path runs from an image made of it (pathimage.go).
		if !filepath.IsAbs(spec.Proxier) {
			return fmt.Errorf("PROXIER=%s: want ours, kube-proxy or the absolute path of a kube-proxy-compatible Linux binary (kind nodes run it from an image built here)", spec.Proxier)
		}
		if err := clusters.Executable(spec.Proxier); err != nil {
			return fmt.Errorf("PROXIER=%s: %w: want ours, kube-proxy or the path of a kube-proxy-compatible Linux binary", spec.Proxier, err)
		}
		return nil
	}
}

func checkMode(mode string, hasIPVS bool) error {
	switch mode {
	case clusters.ModeIPTables, clusters.ModeNFTables:
		return nil
	case clusters.ModeIPVS:
		if hasIPVS {
			return nil
		}
		// kind nodes are containers on the host kernel: no ip_vs here is
		// no ip_vs in any node, and nothing can load it.
		return fmt.Errorf("mode ipvs: %w: kind nodes share the host kernel, which has no ip_vs (%s missing, and modules cannot be loaded); "+
			"use PROVIDER=local, whose IPVS nodes run in the kernel VM", ErrModeUnsupported, hostkernel.IPVSProcFile)
	default:
		return fmt.Errorf("mode %q: want %s, %s or %s", mode, clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS)
	}
}

// ProxierKubeadm is kind's own default proxier: kubeadm's kube-proxy
// addon (registry.k8s.io/kube-proxy, which the node image preloads), in
// the nodes' mode, deployed by kubeadm rather than by us. It makes a
// cluster as kind makes it, for the tests of the kubeconfig provider,
// which reaches clusters the suite did not make; make e2e never asks
// for it.
const ProxierKubeadm = "kubeadm"

// proxierImage is the image of the proxier spec asks for; for a binary
// by path, the base of the image made of it (buildPathImage).
func proxierImage(proxier string) string {
	if proxier == clusters.ProxierKubeProxy {
		return KubeProxyImage
	}
	return ProxierImage
}

// checkImages refuses when an image only make kind-images can provide is
// not in the engine.
func (p *Provider) checkImages(ctx context.Context, spec clusters.Spec) error {
	var missing []string
	for _, img := range []string{p.NodeImage, proxierImage(spec.Proxier), NetserverImage} {
		if !strings.HasPrefix(img, ourImagePrefix) {
			continue // kind pulls a public node image itself
		}
		if _, err := p.docker(ctx, "image", "inspect", "--format", "{{.Id}}", img); err != nil {
			missing = append(missing, img)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("PROVIDER=kind: image(s) %s not in the Docker engine: run make kind-images (no registry is used)", strings.Join(missing, ", "))
	}
	// The spec's own images are loaded from the engine, never pulled.
	for _, img := range spec.Images {
		if _, err := p.docker(ctx, "image", "inspect", "--format", "{{.Id}}", img); err != nil {
			missing = append(missing, img)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("PROVIDER=kind: image(s) %s not in the Docker engine, and nodes never pull: build them first (make conformance-deps builds upstream's test images)", strings.Join(missing, ", "))
	}
	return nil
}

// RealKubelet: kind nodes run kubelet and containerd.
func (p *Provider) RealKubelet() bool { return true }

var (
	_ clusters.Prechecker      = (*Provider)(nil)
	_ clusters.SetupNeeder     = (*Provider)(nil)
	_ clusters.KubeletProvider = (*Provider)(nil)
)

// Precheck is Check's part that needs neither the engine nor the images,
// so a run refuses an ipvs node on this kernel before it builds anything.
func (p *Provider) Precheck(spec clusters.Spec) error { return checkSpec(spec, p.hasIPVS()) }

// SetupSteps: the Docker engine and every image, built here with no
// registry (hack/kind/build-images.sh starts the engine and builds the
// control plane too).
func (p *Provider) SetupSteps([]clusters.Spec) []string {
	return []string{"hack/install-deps.sh", "hack/kind/build-images.sh"}
}
