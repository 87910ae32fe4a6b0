package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMissingBinariesSayHowToBuildThem(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("PROXYPROOF_CACHE", cache)
	bin := BinDir("v9.9.9")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// One present, executable; one present but not executable.
	if err := os.WriteFile(filepath.Join(bin, "kube-apiserver"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Binaries("v9.9.9")
	if err == nil {
		t.Fatal("want an error for an incomplete cache")
	}
	msg := err.Error()
	for _, want := range []string{"run hack/controlplane/build.sh", "v9.9.9", "kube-scheduler", "kube-controller-manager", "kube-proxy", "kubectl: not an executable"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "kube-apiserver") {
		t.Errorf("error %q names kube-apiserver, which is present", msg)
	}
	if want := filepath.Join(cache, "k8s", "v9.9.9", "bin"); bin != want {
		t.Errorf("BinDir = %s, want %s", bin, want)
	}
}
