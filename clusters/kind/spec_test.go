package kind

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
)

// fakeEngine answers docker commands from a set of present images.
func fakeEngine(running bool, images ...string) func(context.Context, ...string) ([]byte, error) {
	return func(_ context.Context, args ...string) ([]byte, error) {
		if !running {
			return nil, errors.New("docker info: Cannot connect to the Docker daemon")
		}
		if len(args) > 1 && args[0] == "image" && args[1] == "inspect" {
			for _, img := range images {
				if img == args[len(args)-1] {
					return []byte("sha256:1\n"), nil
				}
			}
			return nil, errors.New("No such image: " + args[len(args)-1])
		}
		return []byte("20.10.24\n"), nil
	}
}

func testProvider(hasIPVS, running bool, images ...string) *Provider {
	return &Provider{NodeImage: DefaultNodeImage, StateRoot: "/nonexistent", hasIPVS: func() bool { return hasIPVS }, docker: fakeEngine(running, images...)}
}

func spec(proxier string, modes ...string) clusters.Spec {
	s := clusters.Spec{Name: "c1", Proxier: proxier}
	for _, m := range modes {
		s.Nodes = append(s.Nodes, clusters.NodeSpec{Mode: m})
	}
	return s
}

var allImages = []string{DefaultNodeImage, ProxierImage, KubeProxyImage, NetserverImage}

func TestAnIPVSNodeOnAKernelWithoutIPVSIsRefusedNamingIPVSAndTheLocalProvider(t *testing.T) {
	p := testProvider(false, true, allImages...)
	err := p.Check(spec(clusters.ProxierOurs, clusters.ModeIPTables, clusters.ModeIPVS))
	if err == nil {
		t.Fatal("Check accepted an ipvs node on a kernel without ip_vs")
	}
	for _, want := range []string{"node 2", "mode ipvs", "ip_vs", "/proc/net/ip_vs", "PROVIDER=local", "kernel VM"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !errors.Is(err, ErrModeUnsupported) {
		t.Errorf("error %v is not ErrModeUnsupported", err)
	}
	if err := testProvider(true, true, allImages...).Check(spec(clusters.ProxierOurs, clusters.ModeIPVS)); err != nil {
		t.Errorf("on a kernel with ip_vs, an ipvs node was refused: %v", err)
	}
}

func TestCheckRefusesWhatKindCannotRunBeforeAnythingExists(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *Provider
		spec clusters.Spec
		want []string
	}{
		{"no Docker engine", testProvider(true, false), spec(clusters.ProxierOurs, clusters.ModeIPTables), []string{"Docker engine", "make kind-images"}},
		{"our images missing", testProvider(true, true, DefaultNodeImage), spec(clusters.ProxierOurs, clusters.ModeIPTables),
			[]string{ProxierImage, NetserverImage, "make kind-images"}},
		{"kube-proxy's image missing", testProvider(true, true, DefaultNodeImage, ProxierImage, NetserverImage), spec(clusters.ProxierKubeProxy, clusters.ModeNFTables),
			[]string{KubeProxyImage, "make kind-images"}},
		{"a proxier binary by a path with no file", testProvider(true, true, allImages...), spec("/usr/local/bin/my-proxy", clusters.ModeIPTables),
			[]string{"PROXIER=/usr/local/bin/my-proxy", "no such file", "Linux binary"}},
		{"a proxier binary by a relative path", testProvider(true, true, allImages...), spec("bin/my-proxy", clusters.ModeIPTables),
			[]string{"PROXIER=bin/my-proxy", "absolute path"}},
		{"no nodes", testProvider(true, true, allImages...), spec(clusters.ProxierOurs), []string{"NODES"}},
		{"an unknown mode", testProvider(true, true, allImages...), spec(clusters.ProxierOurs, "userspace"), []string{`"userspace"`, "iptables"}},
		{"a node of its own kernel", testProvider(true, true, allImages...),
			clusters.Spec{Name: "c1", Proxier: clusters.ProxierOurs, Nodes: []clusters.NodeSpec{{Mode: "iptables"}, {Mode: "iptables", Kernel: clusters.KernelVM}}},
			[]string{"node 2", "NODE_KERNELS=vm", "share the host's kernel", "PROVIDER=local"}},
		{"a name kind cannot use", testProvider(true, true, allImages...), clusters.Spec{Name: "My_Cluster", Proxier: clusters.ProxierOurs, Nodes: []clusters.NodeSpec{{Mode: "iptables"}}},
			[]string{`"My_Cluster"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.spec)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Users with a registry name kindest/node: kind pulls it, Check must not
// ask them to build ours.
func TestAPublicNodeImageNeedNotBeInTheEngine(t *testing.T) {
	p := testProvider(true, true, ProxierImage, NetserverImage)
	p.NodeImage = "kindest/node:v1.34.0"
	if err := p.Check(spec(clusters.ProxierOurs, clusters.ModeIPTables, clusters.ModeNFTables)); err != nil {
		t.Errorf("Check refused a missing public node image: %v", err)
	}
}

func TestTheNodeImageComesFromKindNodeImage(t *testing.T) {
	t.Setenv(EnvNodeImage, "")
	if got := NewProvider().NodeImage; got != DefaultNodeImage {
		t.Errorf("default node image %q, want %q", got, DefaultNodeImage)
	}
	t.Setenv(EnvNodeImage, "kindest/node:v1.34.0")
	if got := NewProvider().NodeImage; got != "kindest/node:v1.34.0" {
		t.Errorf("node image %q, want KIND_NODE_IMAGE's", got)
	}
}

func TestASpecsTestImagesMustBeInTheEngineSinceNodesNeverPull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Check needs root before it asks the engine")
	}
	agnhost := "registry.k8s.io/e2e-test-images/agnhost:2.56"
	s := spec(clusters.ProxierOurs, clusters.ModeIPTables, clusters.ModeIPTables)
	s.Images = []string{agnhost}
	err := testProvider(false, true, allImages...).Check(s)
	if err == nil || !strings.Contains(err.Error(), agnhost) || !strings.Contains(err.Error(), "make conformance-deps") {
		t.Errorf("a test image missing from the engine: err %v, want it named with the target that builds it", err)
	}
	if err := testProvider(false, true, append(allImages, agnhost)...).Check(s); err != nil {
		t.Errorf("every image present: %v", err)
	}
}

func TestAProxierBinaryByPathIsAcceptedAndNamesItsImageByContent(t *testing.T) {
	dir := t.TempDir()
	bin := dir + "/my-proxy"
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := testProvider(true, true, allImages...).Check(spec(bin, clusters.ModeIPTables)); err != nil {
		t.Fatalf("an executable by absolute path was refused: %v", err)
	}
	a, err := pathImage(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho rebuilt\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := pathImage(bin)
	if a == b || !strings.HasPrefix(a, pathImageRepo+":") {
		t.Errorf("images %q then %q for a rebuilt binary: want a new name under %s", a, b, pathImageRepo)
	}
	objs, err := proxierFor(bin, []string{clusters.ModeIPTables}, "172.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	c := objs.DaemonSets[0].Spec.Template.Spec.Containers[0]
	if c.Image != b || c.Command[0] != pathBinary {
		t.Errorf("the DaemonSet runs %s %s, want %s %s", c.Image, c.Command[0], b, pathBinary)
	}
}
