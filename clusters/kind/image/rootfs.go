package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NodeConfig is the node image's runtime configuration, as kind's base
// image has it: systemd learns it runs in a container from $container,
// stops on SIGRTMIN+3 (SIGTERM makes it re-execute), and kind's entrypoint
// prepares the container before it execs /sbin/init.
var NodeConfig = v1.Config{
	Env:        []string{pathEnv, "container=docker"},
	Entrypoint: []string{"/usr/local/bin/entrypoint", "/sbin/init"},
	StopSignal: "SIGRTMIN+3",
}

// WriteRootfsArchive writes to w a docker archive (for `docker load`) of
// one image named ref: the root filesystem tarball rootfs as its only,
// uncompressed layer, with cfg. Unlike `docker import`, it can set every
// config field (Docker refuses STOPSIGNAL there), and unlike a layer
// through go-containerregistry it does not gzip hundreds of MB.
func WriteRootfsArchive(w io.Writer, rootfs, ref string, cfg v1.Config) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	f, err := os.Open(rootfs)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", rootfs, err)
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	config, err := json.Marshal(v1.ConfigFile{
		Architecture: runtime.GOARCH, OS: "linux", Config: cfg,
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
	})
	if err != nil {
		return err
	}
	configName := fmt.Sprintf("%x.json", sha256.Sum256(config))
	layerName := diffID.Hex + "/layer.tar"
	manifest, err := json.Marshal(tarball.Manifest{{Config: configName, RepoTags: []string{tag.String()}, Layers: []string{layerName}}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, file := range []struct {
		name string
		data []byte
	}{{"manifest.json", manifest}, {configName, config}} {
		if err := tw.WriteHeader(&tar.Header{Name: file.name, Mode: 0o644, Size: int64(len(file.data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(file.data); err != nil {
			return err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: layerName, Mode: 0o644, Size: size, ModTime: epoch}); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("rootfs %s: %w", rootfs, err)
	} else if n != size {
		return fmt.Errorf("rootfs %s changed while read: %d bytes, then %d", rootfs, size, n)
	}
	return tw.Close()
}
