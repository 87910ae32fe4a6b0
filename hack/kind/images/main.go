// Command images writes the kind cluster's images (clusters/kind/image) as
// docker archives into --out: controlplane.tar (every image kubeadm asks
// for, imported into the node image's containerd), proxier.tar,
// kube-proxy.tar and netserver.tar (loaded into Docker, then into nodes).
// Beside each archive, <archive>.ids lists "name image-id" per image, so
// hack/kind/build-images.sh can tell whether Docker already holds them.
//
//	images names --version v1.34.4    kubeadm's image names, one a line
//	images tool-packages              the Debian packages of the tools layer
//	images rootfs --rootfs TAR --name IMAGE   the node's base image as a
//	                                  docker archive on stdout
//	images write --version ... --out DIR --kube-bin DIR ...
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/proxyproof/proxyproof/clusters/kind/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: images names|tool-packages|rootfs|write [flags]")
	}
	fs := pflag.NewFlagSet(args[0], pflag.ContinueOnError)
	version := fs.String("version", "", "Kubernetes version, e.g. v1.34.4")
	var in image.Inputs
	out := fs.String("out", "", "directory the archives are written to")
	rootfs := fs.String("rootfs", "", "rootfs: the root filesystem tarball")
	ref := fs.String("name", "", "rootfs: the image name")
	tools := fs.String("tools", "", "tree of the unpacked Debian tool packages")
	fs.StringVar(&in.KubeBin, "kube-bin", "", "directory of kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy")
	fs.StringVar(&in.Etcd, "etcd", "", "etcd binary")
	fs.StringVar(&in.CoreDNS, "coredns", "", "coredns binary")
	fs.StringVar(&in.Pause, "pause", "", "pause binary")
	fs.StringVar(&in.Proxier, "proxier", "", "proxier binary")
	fs.StringVar(&in.Netserver, "netserver", "", "netserver binary")
	fs.StringVar(&in.Netprobe, "netprobe", "", "netprobe binary")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	in.Version = *version
	switch args[0] {
	case "names":
		names, err := image.KubeadmNames(*version)
		if err != nil {
			return err
		}
		fmt.Println(strings.Join(names.List(), "\n"))
		return nil
	case "rootfs":
		if *rootfs == "" || *ref == "" {
			return errors.New("rootfs needs --rootfs TARBALL --name IMAGE")
		}
		return image.WriteRootfsArchive(os.Stdout, *rootfs, *ref, image.NodeConfig)
	case "tool-packages":
		fmt.Println(strings.Join(image.ToolPackages, " "))
		return nil
	case "write":
		return write(in, *tools, *out, fs)
	}
	return fmt.Errorf("unknown command %q: want names, tool-packages, rootfs or write", args[0])
}

func write(in image.Inputs, tools, out string, fs *pflag.FlagSet) error {
	var missing []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Value.String() == "" && f.Name != "rootfs" && f.Name != "name" {
			missing = append(missing, "--"+f.Name)
		}
	})
	if len(missing) > 0 {
		return fmt.Errorf("write needs %s", strings.Join(missing, ", "))
	}
	var err error
	if in.Tools, err = image.ToolsLayer(tools); err != nil {
		return err
	}
	controlPlane, err := image.ControlPlane(in)
	if err != nil {
		return err
	}
	archives := []struct {
		file   string
		images []image.Image
	}{
		{"controlplane.tar", controlPlane},
		{"proxier.tar", []image.Image{image.Proxier(in)}},
		{"kube-proxy.tar", []image.Image{image.KubeProxy(in)}},
		{"netserver.tar", []image.Image{image.Netserver(in)}},
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, a := range archives {
		path := filepath.Join(out, a.file)
		fmt.Fprintf(os.Stderr, "images: writing %s\n", path)
		ids, err := image.WriteArchive(path, a.images)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path+".ids", []byte(ids), 0o644); err != nil {
			return err
		}
	}
	return nil
}
