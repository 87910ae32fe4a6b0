package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/config"
)

func TestNamespacesAreClaimedOnlyByTheirCluster(t *testing.T) {
	for _, tc := range []struct {
		cluster, ns string
		want        bool
	}{
		{"a", "a-ul", true},
		{"a", "a-sink", true},
		{"a", "a-node-12", true},
		{"a", "a-p-0f1e2d3c-4b5", true},
		{"a", "a-b-ul", false},       // cluster "a-b"'s underlay
		{"a", "a-b-node-1", false},   // cluster "a-b"'s node
		{"a-b", "a-ul", false},       // cluster "a"'s underlay
		{"a", "a-node-x", false},     // not a node name
		{"a", "ab-ul", false},        // cluster "ab"
		{"a", "iptables-1-1", false}, // another package's test namespace
	} {
		if got := ownsNamespace(tc.cluster, tc.ns); got != tc.want {
			t.Errorf("cluster %q claims namespace %q = %v, want %v", tc.cluster, tc.ns, got, tc.want)
		}
	}
}

func TestEveryFixedAddressIsOnTheUnderlay(t *testing.T) {
	for _, ip := range []string{ForwarderIP, sinkIP, nodeIP(0), nodeIP(maxNodes - 1)} {
		if !underlayContains(ip) {
			t.Errorf("%s is outside the underlay %s", ip, underlayPrefix)
		}
	}
	if nodeIP(maxNodes-1) == sinkIP {
		t.Errorf("the last node would take the sink's address %s", sinkIP)
	}
}

func TestTheProxierConfigIsAValidKubeProxyConfiguration(t *testing.T) {
	for _, mode := range []string{ModeIPTables, ModeNFTables, ModeIPVS} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "proxier.yaml")
			if err := os.WriteFile(path, []byte(proxierConfig("node-2", mode, "198.18.0.12", "/k/proxier.kubeconfig")), 0o644); err != nil {
				t.Fatal(err)
			}
			raw, err := config.Load(path)
			if err != nil {
				t.Fatalf("config does not load: %v", err)
			}
			if string(raw.Mode) != mode || raw.HostnameOverride != "node-2" || raw.ClusterCIDR != ClusterCIDR ||
				raw.HealthzBindAddress != "198.18.0.12:10256" || raw.MetricsBindAddress != "198.18.0.12:10249" ||
				raw.ClientConnection.Kubeconfig != "/k/proxier.kubeconfig" {
				t.Errorf("config loaded as %+v", raw)
			}
		})
	}
}

func TestSpecsAreValidatedBeforeTouchingTheMachine(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"a name longer than 10 characters", Spec{Name: "abcdefghijk"}},
		{"a name with capitals", Spec{Name: "Proxy"}},
		{"a node not called node-N", Spec{Name: "x", Nodes: []NodeSpec{{Name: "worker"}}}},
		{"a node listed twice", Spec{Name: "x", Nodes: []NodeSpec{{Name: "node-1"}, {Name: "node-1"}}}},
		{"an unknown mode", Spec{Name: "x", Nodes: []NodeSpec{{Mode: "userspace"}}}},
		{"a proxier that is not a binary", Spec{Name: "x", Proxier: "/nonexistent/kube-proxy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.spec.withDefaults().validate(); err == nil {
				t.Errorf("spec %+v validated", tc.spec)
			}
		})
	}
	if err := (Spec{}).withDefaults().validate(); err != nil {
		t.Errorf("the default spec is invalid: %v", err)
	}
}
