package app

import (
	"testing"
	"time"

	"github.com/proxyproof/proxyproof/proxier/behaviour"
	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/kernelvm"
)

// tcgSettle is how long a change may take to reach the kernel in the
// kernel VM, which emulates its CPU (TCG) and runs 10-50x slower.
const tcgSettle = 90 * time.Second

// TestKernelBehaviourIPVS runs the shared behaviour table against the ipvs
// mode in the kernel VM (this host's kernel has no ip_vs).
func TestKernelBehaviourIPVS(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	runSlow(t, start(config.ModeIPVS, "--ipvs-min-sync-period=100ms"), tcgSettle)
}

// runSlow is behaviour.Run with Env.Settle raised.
func runSlow(t *testing.T, start behaviour.StartFunc, settle time.Duration) {
	env := behaviour.Setup(t, start)
	env.Settle = settle
	for _, c := range behaviour.Cases() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, env) })
	}
}

// TestKernelMigrationIPTablesToIPVSDropsNothing is the live switch into
// ipvs, in the kernel VM: the two modes share iptables chains, so this is
// the pair where the old mode's cleanup touches the new mode's rules.
func TestKernelMigrationIPTablesToIPVSDropsNothing(t *testing.T) {
	if !kernelvm.InsideVM(t) {
		return
	}
	testMigration(t, config.ModeIPTables, config.ModeIPVS, vmPace)
}
