package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters/kind/image"
)

// fakeTree is an unpacked-packages tree whose busybox lists applets.
func fakeTree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range append(files, "bin/busybox") {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho sh sleep nc ip wget timeout busybox\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func entries(im image.Image) map[string]image.Entry {
	out := map[string]image.Entry{}
	for _, l := range im.Layers {
		for _, e := range l {
			out[e.Path] = e
		}
	}
	return out
}

func TestAgnhostImageRunsAgnhostWithDebianToolsBeforeBusybox(t *testing.T) {
	bin := t.TempDir()
	src := t.TempDir()
	for _, f := range []string{filepath.Join(bin, "agnhost"), filepath.Join(src, "test/images/agnhost/porter/localhost.crt"), filepath.Join(src, "test/images/agnhost/porter/localhost.key")} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ref := "registry.k8s.io/e2e-test-images/agnhost:2.56"
	// dash's package holds /bin/sh; iproute2's /bin/ip; netcat's nc.openbsd.
	tree := fakeTree(t, "bin/dash", "bin/ip", "bin/nc.openbsd", "usr/bin/curl", "usr/bin/wget")
	if err := os.Symlink("dash", filepath.Join(tree, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	ims, err := TestImages([]string{ref}, ImageInputs{Bin: bin, Source: src, Debs: map[string]string{"agnhost": tree}})
	if err != nil {
		t.Fatal(err)
	}
	im := ims[0]
	if im.Names[0] != ref || strings.Join(im.Entrypoint, " ") != "/agnhost" || strings.Join(im.Cmd, " ") != "pause" {
		t.Errorf("image %v entrypoint %v cmd %v, want %s running /agnhost pause as upstream's Dockerfile", im.Names, im.Entrypoint, im.Cmd, ref)
	}
	e := entries(im)
	for path, want := range map[string]string{"/bin/sh": "dash", "/bin/nc": "nc.openbsd", "/bin/sleep": "busybox", "/bin/timeout": "busybox", "/agnhost-2": "agnhost"} {
		if e[path].Link != want {
			t.Errorf("%s links to %q, want %q", path, e[path].Link, want)
		}
	}
	for _, p := range []string{"/bin/ip", "/bin/wget"} {
		if e[p].Link != "" {
			t.Errorf("%s is busybox's applet, want the Debian program (specs run ss, ip and wget)", p)
		}
	}
	for _, p := range []string{"/agnhost", "/localhost.crt", "/uploads", "/etc/passwd", "/etc/group", "/tmp"} {
		if _, ok := e[p]; !ok {
			t.Errorf("agnhost image lacks %s", p)
		}
	}
	if !strings.Contains(string(e["/etc/group"].Data), "group-defined-in-image:x:50000:user-defined-in-image") {
		t.Errorf("/etc/group lacks the group a SupplementalGroups spec expects: %s", e["/etc/group"].Data)
	}
}

func TestAnImageWithoutARecipeIsRefusedNamingTheSkipReason(t *testing.T) {
	_, err := TestImages([]string{"registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7"}, ImageInputs{})
	if err == nil || !strings.Contains(err.Error(), "jessie-dnsutils") || !strings.Contains(err.Error(), "reason image") {
		t.Errorf("err %v, want it to name the image and the skip reason", err)
	}
	if _, err := ImageDebs("registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7"); err == nil {
		t.Error("ImageDebs of an image without a recipe: no error")
	}
}

func TestEveryImageOfTheShippedListHasARecipe(t *testing.T) {
	s, err := ParseSpecs(SpecsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range s.Images {
		if _, err := ImageDebs(ref); err != nil {
			t.Error(err)
		}
	}
}
