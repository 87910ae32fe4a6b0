package local

import (
	"slices"
	"testing"
)

func TestSetUpBuildsTheVMImageOnlyWhenAModeRunsInTheVM(t *testing.T) {
	noIPVS := func(m string) bool { return m == "ipvs" }
	hostIPVS := func(string) bool { return false }
	tests := []struct {
		name     string
		modes    []string
		runsInVM func(string) bool
		want     []string
	}{
		{"nftables alone needs no VM", []string{"nftables"}, noIPVS, []string{"hack/install-deps.sh", "hack/controlplane/build.sh"}},
		{"ipvs on a kernel without ip_vs needs the VM image", []string{"ipvs"}, noIPVS, []string{"hack/install-deps.sh", "hack/controlplane/build.sh", "hack/vm/build-image.sh"}},
		{"all modes include ipvs, so the VM image", []string{"iptables", "nftables", "ipvs"}, noIPVS, []string{"hack/install-deps.sh", "hack/controlplane/build.sh", "hack/vm/build-image.sh"}},
		{"ipvs on a kernel with ip_vs needs no VM", []string{"ipvs"}, hostIPVS, []string{"hack/install-deps.sh", "hack/controlplane/build.sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := setupSteps(tt.modes, tt.runsInVM); !slices.Equal(got, tt.want) {
				t.Errorf("setupSteps(%q) = %q, want %q", tt.modes, got, tt.want)
			}
		})
	}
}
