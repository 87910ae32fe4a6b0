package kind

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/proxyproof/proxyproof/clusters"
)

func TestTheKindConfigHasOneControlPlaneThenWorkersEachLabelledWithItsMode(t *testing.T) {
	spec := clusters.Spec{Name: "c1", Proxier: clusters.ProxierOurs, Nodes: []clusters.NodeSpec{
		{Mode: clusters.ModeIPTables}, {Mode: clusters.ModeNFTables}, {Mode: clusters.ModeIPTables},
	}}
	cfg := kindConfig(spec, "example/node:v1")
	var got []string
	for _, n := range cfg.Nodes {
		got = append(got, string(n.Role)+" "+n.Image+" "+n.Labels[LabelMode])
	}
	want := []string{
		"control-plane example/node:v1 iptables",
		"worker example/node:v1 nftables",
		"worker example/node:v1 iptables",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if cfg.Name != "c1" {
		t.Errorf("name %q, want c1", cfg.Name)
	}
}

// What kind reads: no kube-proxy, no kindnet, our ranges, IPv4.
func TestTheKindConfigDisablesKubeProxyAndTheDefaultCNI(t *testing.T) {
	cfg := kindConfig(clusters.Spec{Name: "c1", Nodes: []clusters.NodeSpec{{Mode: clusters.ModeIPTables}}}, "img")
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"apiVersion: kind.x-k8s.io/v1alpha4",
		"kind: Cluster",
		"  kubeProxyMode: none",
		"  disableDefaultCNI: true",
		"  podSubnet: 10.244.0.0/16",
		"  serviceSubnet: 10.96.0.0/16",
		"  ipFamily: ipv4",
	} {
		if !strings.Contains("\n"+string(b), "\n"+line+"\n") {
			t.Errorf("kind config lacks line %q:\n%s", line, b)
		}
	}
	var back v1alpha4.Cluster
	if err := yaml.UnmarshalStrict(b, &back); err != nil {
		t.Errorf("kind's v1alpha4 type does not read the config back strictly: %v", err)
	}
}

func TestNodeNamesAreTheOnesKindGivesItsContainers(t *testing.T) {
	var got []string
	for i := range 4 {
		got = append(got, nodeName("c1", i))
	}
	want := []string{"c1-control-plane", "c1-worker", "c1-worker2", "c1-worker3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node names (-want +got):\n%s", diff)
	}
}
