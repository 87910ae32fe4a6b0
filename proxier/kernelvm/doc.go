// Package kernelvm runs a host binary inside a small QEMU (TCG) VM booted
// from Debian's generic kernel, so tests get a kernel with ip_vs and
// loadable netfilter modules on a host that has neither. It must never
// write to the host: the host's / is shared read-only, and the only
// writable channel is a per-run temporary directory.
//
// # Image
//
// hack/vm/build-image.sh builds the kernel and initramfs into
// ${PROXYPROOF_CACHE:-/var/cache/proxyproof}/vm/<key> (key = hash of the
// script and the kernel package version) and points vm/current at it.
// EnsureImage runs the script (a second to check when cached); Available
// reports whether an image and qemu are there. hack/vm/run.sh is Run's
// shell twin for use by hand: hack/vm/run.sh -- ipvsadm -Ln.
//
// # Inside the VM
//
// The guest init loads every module the proxier can use (ip_vs and all its
// schedulers, nf_conntrack, nf_nat, nf_tables and the nft expressions,
// ip_tables and the xt_ matches, ip_set types, dummy, veth, bridge,
// br_netfilter, tun) and powers off with an error if any fails. It mounts
// the host's / read-only over 9p at /host, fresh proc, sys, dev, a tmpfs
// /run and an overlay /tmp (host /tmp below, guest memory above), then runs
// the job chrooted into /host: the host's binaries and files are at the
// same paths, writes to /tmp and /run stay in the VM. Loopback is up; there
// is no other network device unless Options.TapName is set.
//
// The writable channel is a second 9p share (tag "kernelvm") of a per-run
// host directory, mounted at /run/kernelvm: the host writes "job" (a shell
// script), the guest writes "output" (the command's stdout and stderr,
// interleaved) and "exit" (its exit code). The console carries only
// "kernelvm: ..." progress and error lines and the kernel's complaints.
//
// # Tests that need the real kernel
//
// A test re-runs itself inside the VM:
//
//	func TestIPVSSomething(t *testing.T) {
//		if !kernelvm.InsideVM(t) {
//			return // ran in the VM; its output is in this test's log
//		}
//		// Here the kernel has ip_vs; PROXYPROOF_IN_VM=1 is set.
//	}
//
// On the host InsideVM boots the VM, runs the package's own test binary
// (os.Args[0]) there with -test.run matching only this test and
// PROXYPROOF_IN_VM=1, logs the inner output and fails the test if the inner
// run failed or matched no test. RunTestInVM does the same for any test
// binary and -test.run pattern. Both skip when not root and build the
// image when it is missing. TCG is slow (a boot is ~4 s, rule-heavy work
// 10-50x slower than native): compare timings VM to VM only.
package kernelvm
