package image

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestRootfsArchiveIsTheTarballAsOneLayerWithTheNodeConfig(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, h := range []*tar.Header{
		{Name: "sbin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "sbin/init", Typeflag: tar.TypeSymlink, Linkname: "/lib/systemd/systemd"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	archive := filepath.Join(dir, "node.tar")
	out, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteRootfsArchive(out, rootfs, "proxyproof/kind-node-rootfs:abc", NodeConfig); err != nil {
		t.Fatal(err)
	}
	out.Close()

	tag, _ := name.NewTag("proxyproof/kind-node-rootfs:abc")
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatalf("read back the archive docker load would read: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.StopSignal != "SIGRTMIN+3" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/entrypoint", "/sbin/init"}) ||
		!slices.Contains(cfg.Config.Env, "container=docker") {
		t.Errorf("node config = %+v, want kind's: SIGRTMIN+3, the entrypoint, container=docker", cfg.Config)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var got []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		got = append(got, h.Name+" -> "+h.Linkname)
	}
	if want := []string{"sbin -> ", "sbin/init -> /lib/systemd/systemd"}; !slices.Equal(got, want) {
		t.Errorf("image files %q, want the rootfs's %q", got, want)
	}
}

func TestRootfsArchiveNamesAMissingTarball(t *testing.T) {
	err := WriteRootfsArchive(io.Discard, "/nonexistent/rootfs.tar", "x:y", NodeConfig)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/rootfs.tar") {
		t.Errorf("error = %v, want one naming the tarball", err)
	}
}
