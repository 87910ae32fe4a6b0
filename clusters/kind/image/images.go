package image

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Our images' names; the manifests and the suites use them.
const (
	ProxierImage   = "proxyproof/proxier:dev"
	NetserverImage = "proxyproof/netserver:latest"
	// KubeProxyRepo is upstream kube-proxy with our tools, tagged with the
	// Kubernetes version (PROXIER=kube-proxy).
	KubeProxyRepo = "proxyproof/kube-proxy"
)

// pathEnv is every image's PATH: kubeadm's manifests name the commands
// without a directory.
const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Inputs are the host files the images are made of.
type Inputs struct {
	// Version is the Kubernetes version, e.g. "v1.34.4".
	Version string
	// KubeBin holds kube-apiserver, kube-controller-manager,
	// kube-scheduler and kube-proxy built at Version.
	KubeBin string
	// Etcd, CoreDNS and Pause are the binaries of those images.
	Etcd, CoreDNS, Pause string
	// Proxier, Netserver and Netprobe are our static binaries.
	Proxier, Netserver, Netprobe string
	// Tools is the layer of userspace tools a proxier calls (see
	// ToolsLayer).
	Tools []Entry
}

// Image is one image to assemble.
type Image struct {
	// Names are the references it is tagged with.
	Names      []string
	Layers     [][]Entry
	Entrypoint []string
	// Cmd is the default arguments (a Dockerfile's CMD).
	Cmd []string
	Env []string
}

// ControlPlane is every image kubeadm of in.Version asks for, under its
// names; kube-proxy is also tagged as ours (proxyproof/kube-proxy).
func ControlPlane(in Inputs) ([]Image, error) {
	n, err := KubeadmNames(in.Version)
	if err != nil {
		return nil, err
	}
	kube := func(ref, cmd string) Image {
		return binImage([]string{ref}, "/usr/local/bin/"+cmd, filepath.Join(in.KubeBin, cmd), nil)
	}
	kubeProxy := KubeProxy(in)
	kubeProxy.Names = append([]string{n.KubeProxy}, kubeProxy.Names...)
	return []Image{
		kube(n.APIServer, "kube-apiserver"),
		kube(n.ControllerManager, "kube-controller-manager"),
		kube(n.Scheduler, "kube-scheduler"),
		kubeProxy,
		// kubeadm's etcd manifest names the command; CoreDNS's Deployment
		// gives only args, so its entrypoint must be /coredns as upstream's.
		binImage([]string{n.Etcd}, "/usr/local/bin/etcd", in.Etcd, nil),
		binImage([]string{n.CoreDNS}, "/coredns", in.CoreDNS, []string{"/coredns"}),
		binImage([]string{n.Pause}, "/pause", in.Pause, []string{"/pause"}),
	}, nil
}

// binImage is one binary at imagePath; entrypoint defaults to it.
func binImage(names []string, imagePath, hostPath string, entrypoint []string) Image {
	if entrypoint == nil {
		entrypoint = []string{imagePath}
	}
	return Image{
		Names:      names,
		Layers:     [][]Entry{{Bin(imagePath, hostPath), tmpDir}},
		Entrypoint: entrypoint,
		Env:        []string{pathEnv},
	}
}

// tmpDir is the /tmp every image has (some programs write there).
var tmpDir = Entry{Path: "/tmp", Mode: fs.ModeSticky | 0o777, Dir: true}

// Proxier is our proxier (manifests/proxier runs /proxier) with the
// tools a hostNetwork proxier calls.
func Proxier(in Inputs) Image {
	return Image{
		Names:      []string{ProxierImage},
		Layers:     [][]Entry{in.Tools, {Bin("/proxier", in.Proxier), tmpDir}},
		Entrypoint: []string{"/proxier"},
		Env:        []string{pathEnv},
	}
}

// KubeProxy is upstream kube-proxy at /usr/local/bin/kube-proxy (where
// kubeadm's DaemonSet runs it) with the same tools.
func KubeProxy(in Inputs) Image {
	return Image{
		Names:      []string{KubeProxyRepo + ":" + in.Version},
		Layers:     [][]Entry{in.Tools, {Bin("/usr/local/bin/kube-proxy", filepath.Join(in.KubeBin, "kube-proxy")), tmpDir}},
		Entrypoint: []string{"/usr/local/bin/kube-proxy"},
		Env:        []string{pathEnv},
	}
}

// Netserver is the suites' test server, with the probe program the suites
// exec inside pods on PATH.
func Netserver(in Inputs) Image {
	return Image{
		Names: []string{NetserverImage},
		Layers: [][]Entry{{
			Bin("/usr/local/bin/netserver", in.Netserver),
			Bin("/usr/local/bin/netprobe", in.Netprobe),
			tmpDir,
		}},
		Entrypoint: []string{"/usr/local/bin/netserver"},
		Env:        []string{pathEnv},
	}
}

// Build assembles im on an empty image.
func (im Image) Build() (v1.Image, error) {
	img := empty.Image
	for i, entries := range im.Layers {
		l, err := Layer(entries)
		if err != nil {
			return nil, fmt.Errorf("image %s layer %d: %w", im.Names[0], i, err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, fmt.Errorf("image %s layer %d: %w", im.Names[0], i, err)
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", im.Names[0], err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Entrypoint = im.Entrypoint
	cfg.Config.Cmd = im.Cmd
	cfg.Config.Env = im.Env
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", im.Names[0], err)
	}
	return img, nil
}

// WriteArchive writes images as one docker archive (`docker save`'s
// format, which `docker load` and `ctr images import` read), every image
// under each of its names. It returns "name image-id" lines: the ID
// (config digest) Docker gives the image once loaded.
func WriteArchive(path string, images []Image) (string, error) {
	refs := map[name.Reference]v1.Image{}
	var ids strings.Builder
	for _, im := range images {
		if len(im.Names) == 0 {
			return "", fmt.Errorf("archive %s: an image has no name", path)
		}
		img, err := im.Build()
		if err != nil {
			return "", err
		}
		id, err := img.ConfigName()
		if err != nil {
			return "", fmt.Errorf("image %s: %w", im.Names[0], err)
		}
		for _, n := range im.Names {
			ref, err := name.NewTag(n)
			if err != nil {
				return "", fmt.Errorf("image name %q: %w", n, err)
			}
			refs[ref] = img
			fmt.Fprintf(&ids, "%s %s\n", n, id)
		}
	}
	if err := tarball.MultiRefWriteToFile(path, refs); err != nil {
		return "", fmt.Errorf("write archive %s: %w", path, err)
	}
	return ids.String(), nil
}
