// Package bench measures our proxier side by side with upstream kube-proxy:
// the same API server and objects, each proxier in a fresh node network
// namespace per mode (IPVS: in the kernel VM, read through a probe there),
// every figure read from the kernel from outside the proxier. It must never
// touch the host's root network namespace: the apiserver is reached through
// a forwarder it opens inside the node namespace (or the VM's tap namespace).
package bench
