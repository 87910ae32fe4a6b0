package terraform

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBadParametersAreRefusedNamingTheParameter(t *testing.T) {
	empty := t.TempDir()
	module := t.TempDir()
	if err := os.WriteFile(filepath.Join(module, "main.tf"), []byte("output \"kubeconfig\" { value = \"\" }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no TF_DIR", map[string]string{}, `TF_DIR="": want the directory of a Terraform/OpenTofu root module`},
		{"a TF_DIR that does not exist", map[string]string{EnvDir: "/nonexistent/module"}, `TF_DIR="/nonexistent/module": want an existing directory`},
		{"a TF_DIR without a module", map[string]string{EnvDir: empty}, "it has no *.tf or *.tf.json file"},
		{"a TF_VARS item that is no k=v", map[string]string{EnvDir: module, EnvVars: "name=a,oops"}, `("oops" is neither)`},
		{"a TF_VARS file that does not exist", map[string]string{EnvDir: module, EnvVars: "/nonexistent/x.tfvars"}, "/nonexistent/x.tfvars does not exist"},
		{"a TF_BIN not found", map[string]string{EnvDir: module, EnvBin: "terraform-nonexistent"}, `TF_BIN="terraform-nonexistent": want tofu (ours, built by hack/tofu/build.sh), terraform, or the path of either binary`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigFromEnv(mapLookup(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTFVarsSplitsAssignmentsAndFiles(t *testing.T) {
	f := filepath.Join(t.TempDir(), "a.tfvars")
	if err := os.WriteFile(f, []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars, files, err := parseVars(" name=h4-a , " + f + ",node_mode=nftables,")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(vars, " ") != "name=h4-a node_mode=nftables" || len(files) != 1 || files[0] != f {
		t.Fatalf("vars %q files %q", vars, files)
	}
}

func TestDefaultBinaryIsOurBuiltTofu(t *testing.T) {
	t.Setenv("PROXYPROOF_CACHE", t.TempDir())
	cfg := Config{}
	_, err := cfg.bin()
	if err == nil || !strings.Contains(err.Error(), "built by hack/tofu/build.sh") {
		t.Fatalf("without a built tofu: got %v, want the error naming hack/tofu/build.sh", err)
	}
	p := &Provider{Lookup: mapLookup(map[string]string{EnvDir: "clusters/terraform/examples/own-cluster"})}
	if got := p.SetupSteps(nil); !slices.Equal(got, []string{"hack/tofu/build.sh", "hack/tofu/plugin.sh"}) {
		t.Fatalf("set-up steps %q, want our tofu built, then our plugin", got)
	}
	own := filepath.Join(t.TempDir(), "terraform")
	if err := os.WriteFile(own, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p = &Provider{Lookup: mapLookup(map[string]string{EnvDir: "clusters/terraform/examples/own-cluster", EnvBin: own})}
	if got := p.SetupSteps(nil); !slices.Equal(got, []string{"hack/tofu/plugin.sh"}) {
		t.Fatalf("TF_BIN=terraform: set-up steps %q, want our plugin only (its module may use it)", got)
	}
}

// A kind cluster declared in HCL needs what make e2e PROVIDER=kind sets
// up (the Docker engine, the images): a fresh machine's first
// make e2e PROVIDER=terraform TF_DIR=.../kind-iptables found no dockerd.
func TestSetUpReadiesTheProvidersTheModulesClustersUse(t *testing.T) {
	own := filepath.Join(t.TempDir(), "terraform")
	if err := os.WriteFile(own, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	module := func(body string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	kindSteps := []string{"hack/install-deps.sh", "hack/kind/build-images.sh"}
	localSteps := []string{"hack/install-deps.sh", "hack/controlplane/build.sh"}
	for _, tc := range []struct {
		name, dir string
		want      []string
	}{
		{"the kind example", "clusters/terraform/examples/kind-iptables", kindSteps},
		{"the mixed example", "clusters/terraform/examples/mixed", kindSteps},
		{"a module for a cluster of the user's (outputs only)", "clusters/terraform/examples/own-cluster", nil},
		{"a local cluster", module(`resource "proxyproof_cluster" "a" {
  cluster_provider = "local"
  name = "a"
}`), localSteps},
		{"a provider from a variable", module(`variable "p" { default = "kind" }
resource "proxyproof_cluster" "a" {
  cluster_provider = var.p
}`), []string{"hack/install-deps.sh", "hack/kind/build-images.sh", "hack/controlplane/build.sh"}},
		{"two clusters, kind and local", module(`resource "proxyproof_cluster" "a" { cluster_provider = "kind" }
resource "proxyproof_cluster" "b" { cluster_provider = "local" }
resource "null_resource" "c" { triggers = { cluster_provider = "kind" } }`),
			[]string{"hack/install-deps.sh", "hack/kind/build-images.sh", "hack/controlplane/build.sh"}},
		{"a module that does not parse (apply names its error)", module(`resource "proxyproof_cluster" {`), nil},
	} {
		p := &Provider{Lookup: mapLookup(map[string]string{EnvDir: tc.dir, EnvBin: own})}
		want := append([]string{"hack/tofu/plugin.sh"}, tc.want...)
		if got := p.SetupSteps(nil); !slices.Equal(got, want) {
			t.Errorf("%s: set-up steps %q, want %q", tc.name, got, want)
		}
	}
}

// The script and the driver must name the same OpenTofu.
func TestTofuVersionMatchesTheBuildScript(t *testing.T) {
	b, err := os.ReadFile("../../hack/tofu/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "TOFU_VERSION:-"+TofuVersion+"}") {
		t.Fatalf("hack/tofu/build.sh does not default to %s", TofuVersion)
	}
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
