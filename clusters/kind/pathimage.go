package kind

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind/image"
)

// A proxier given by path (PROXIER=/path/to/binary: a fork, a vendor's
// kube-proxy-compatible build) runs on kind nodes from an image, as ours
// does: our proxier image (its tools: iptables, nft, ipset, conntrack)
// with the binary added at pathBinary. The binary must run there: a
// static Linux build, or one needing only what that image has. The image
// is named for the binary's content, so a rebuilt binary gets a new image
// and an unchanged one is reused.

// pathBinary is where a proxier given by path runs in its image.
const pathBinary = "/usr/local/bin/proxier-under-test"

// pathImageRepo is the repository of those images.
const pathImageRepo = "proxyproof/proxier-path"

// isPath is whether proxier names a binary rather than ours or kube-proxy.
func isPath(proxier string) bool {
	switch proxier {
	case clusters.ProxierOurs, clusters.ProxierKubeProxy, ProxierKubeadm, clusters.ProxierExisting, "":
		return false
	}
	return true
}

// pathImage is the image name of the binary at path.
func pathImage(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("PROXIER=%s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("PROXIER=%s: %w", path, err)
	}
	return pathImageRepo + ":" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildPathImage puts the image of the binary at path into the Docker
// engine (once per content) and returns its name: our proxier image, from
// the engine, with one layer more.
func buildPathImage(ctx context.Context, path string) (string, error) {
	ref, err := pathImage(path)
	if err != nil {
		return "", err
	}
	if exec.CommandContext(ctx, "docker", "image", "inspect", ref).Run() == nil {
		return ref, nil
	}
	dir, err := os.MkdirTemp("", "proxier-path-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "base.tar")
	if out, err := exec.CommandContext(ctx, "docker", "save", "-o", base, ProxierImage).CombinedOutput(); err != nil {
		return "", fmt.Errorf("PROXIER=%s: docker save %s (the base image; make kind-images builds it): %w: %s", path, ProxierImage, err, out)
	}
	baseTag, err := name.NewTag(ProxierImage)
	if err != nil {
		return "", err
	}
	img, err := tarball.ImageFromPath(base, &baseTag)
	if err != nil {
		return "", fmt.Errorf("PROXIER=%s: read %s: %w", path, ProxierImage, err)
	}
	layer, err := image.Layer([]image.Entry{image.Bin(pathBinary, path)})
	if err != nil {
		return "", fmt.Errorf("PROXIER=%s: %w", path, err)
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return "", fmt.Errorf("PROXIER=%s: %w", path, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Entrypoint = []string{pathBinary}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	archive := filepath.Join(dir, "path.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		return "", fmt.Errorf("PROXIER=%s: write image: %w", path, err)
	}
	if out, err := exec.CommandContext(ctx, "docker", "load", "-i", archive).CombinedOutput(); err != nil {
		return "", fmt.Errorf("PROXIER=%s: docker load: %w: %s", path, err, out)
	}
	return ref, nil
}
