package local

import (
	"fmt"
	"github.com/proxyproof/proxyproof/clusters"

	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/proxier/kernelvm"
)

// ErrModeUnsupported is the clusters package's, named here for callers.
var ErrModeUnsupported = clusters.ErrModeUnsupported

// kernelSupports reports whether nodes of mode can run here: in a
// namespace of this host, or (ipvs without ip_vs) in the kernel VM. It
// never substitutes another mode.
func kernelSupports(mode string) error {
	switch mode {
	case ModeIPTables, ModeNFTables:
		return nil
	case ModeIPVS:
		if hostkernel.HasIPVS() {
			return nil
		}
		// No ip_vs here (and no module loading): the node runs in the
		// kernel VM, which must be ready.
		if err := kernelvm.Available(); err != nil {
			return fmt.Errorf("mode ipvs: %w: the kernel has no IP Virtual Server (%s missing, and modules cannot be loaded here), "+
				"so IPVS nodes run in the kernel VM, which is not ready (run make deps): %w", ErrModeUnsupported, hostkernel.IPVSProcFile, err)
		}
		return nil
	default:
		return fmt.Errorf("mode %q: want %s, %s or %s", mode, ModeIPTables, ModeNFTables, ModeIPVS)
	}
}
