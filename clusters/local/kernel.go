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

// nodeKernelSupports reports whether node n (defaults filled in) can run
// here on the kernel it asks for. vmReady also asks the kernel VM image
// to be there, which only set-up makes: Precheck runs before set-up.
func nodeKernelSupports(n NodeSpec, vmReady bool) error {
	switch n.Kernel {
	case KernelVM:
		if err := knownMode(n.Mode); err != nil {
			return err
		}
		if !vmReady {
			return nil
		}
		if RunsInVM(n.Mode) {
			return kernelSupports(n.Mode) // says why the mode needs the VM
		}
		if err := kernelvm.Available(); err != nil {
			return fmt.Errorf("%s=%s: the node runs in the kernel VM, which is not ready (run make deps): %w", clusters.EnvNodeKernels, KernelVM, err)
		}
		return nil
	case KernelHost:
		if n.Mode == ModeIPVS && !hostkernel.HasIPVS() {
			return fmt.Errorf("%s=%s with mode ipvs: %w: this kernel has no IP Virtual Server (%s missing, and modules cannot be loaded); "+
				"give the node %s or auto, which runs it in the kernel VM", clusters.EnvNodeKernels, KernelHost, ErrModeUnsupported, hostkernel.IPVSProcFile, KernelVM)
		}
		if !vmReady {
			return knownMode(n.Mode)
		}
		return kernelSupports(n.Mode)
	default:
		return fmt.Errorf("kernel %q: want %s or %s (%s)", n.Kernel, KernelHost, KernelVM, clusters.EnvNodeKernels)
	}
}

func knownMode(mode string) error {
	switch mode {
	case ModeIPTables, ModeNFTables, ModeIPVS:
		return nil
	}
	return fmt.Errorf("mode %q: want %s, %s or %s", mode, ModeIPTables, ModeNFTables, ModeIPVS)
}
