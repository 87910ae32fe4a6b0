package local

import (
	"slices"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/hostkernel"
)

func TestSetUpBuildsTheVMImageOnlyWhenANodeRunsInTheVM(t *testing.T) {
	base := []string{"hack/install-deps.sh", "hack/controlplane/build.sh"}
	withVM := append(append([]string(nil), base...), "hack/vm/build-image.sh")
	spec := func(nodes ...clusters.NodeSpec) clusters.Spec {
		return clusters.Spec{Name: "x", Proxier: ProxierOurs, Nodes: nodes}
	}
	ipvsWants := base
	if !hostkernel.HasIPVS() {
		ipvsWants = withVM
	}
	tests := []struct {
		name  string
		specs []clusters.Spec
		want  []string
	}{
		{"nftables on the host needs no VM", []clusters.Spec{spec(clusters.NodeSpec{Mode: ModeNFTables})}, base},
		{"a node given its own kernel needs the VM image whatever its mode",
			[]clusters.Spec{spec(clusters.NodeSpec{Mode: ModeIPTables}, clusters.NodeSpec{Mode: ModeIPTables, Kernel: KernelVM})}, withVM},
		{"ipvs left to the provider needs the VM only without ip_vs here", []clusters.Spec{spec(clusters.NodeSpec{Mode: ModeIPVS})}, ipvsWants},
		{"one spec of several with a VM node is enough",
			[]clusters.Spec{spec(clusters.NodeSpec{Mode: ModeIPTables}), spec(clusters.NodeSpec{Mode: ModeNFTables, Kernel: KernelVM})}, withVM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Provider{}).SetupSteps(tt.specs); !slices.Equal(got, tt.want) {
				t.Errorf("SetupSteps = %q, want %q", got, tt.want)
			}
		})
	}
}
