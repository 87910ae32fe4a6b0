package local

import (
	"errors"
	"fmt"
	"os"
)

// ipvsProcFile exists once the kernel has ip_vs (built in or loaded), in
// every network namespace; a variable so tests can point it elsewhere.
var ipvsProcFile = "/proc/net/ip_vs"

// ErrModeUnsupported is wrapped by the error for a mode the host kernel
// cannot run.
var ErrModeUnsupported = errors.New("mode not supported by the host kernel")

// kernelSupports reports whether nodes of mode can run in a namespace of
// this host. It never substitutes another mode.
func kernelSupports(mode string) error {
	switch mode {
	case ModeIPTables, ModeNFTables:
		return nil
	case ModeIPVS:
		if _, err := os.Stat(ipvsProcFile); err != nil {
			return fmt.Errorf("mode ipvs: %w: the kernel has no IP Virtual Server (%s missing, and modules cannot be loaded here); "+
				"IPVS nodes are meant to run in the kernel VM (hack/vm) attached to the underlay, which the local provider does not wire up yet",
				ErrModeUnsupported, ipvsProcFile)
		}
		return nil
	default:
		return fmt.Errorf("mode %q: want %s, %s or %s", mode, ModeIPTables, ModeNFTables, ModeIPVS)
	}
}
