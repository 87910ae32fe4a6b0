// Package nodeexec runs commands on a local-provider node that the host
// cannot enter with setns: a node in the kernel VM. The node agent serves
// it on the node's underlay address; the host reaches it from the
// cluster's underlay namespace. It must never listen anywhere but the
// sealed underlay, and never run a request without the cluster's token.
package nodeexec
