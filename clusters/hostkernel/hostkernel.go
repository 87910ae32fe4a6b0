// Package hostkernel says what the kernel of this machine can do for the
// nodes of a cluster: providers whose nodes share the host kernel (local
// namespaces, kind containers) refuse or relocate a mode it lacks. It only
// reads; it never loads a module.
package hostkernel

import "os"

// IPVSProcFile exists once the kernel has ip_vs (built in or loaded), in
// every network namespace.
const IPVSProcFile = "/proc/net/ip_vs"

// HasIPVS reports whether this kernel has ip_vs (built in or loaded).
func HasIPVS() bool {
	_, err := os.Stat(IPVSProcFile)
	return err == nil
}
