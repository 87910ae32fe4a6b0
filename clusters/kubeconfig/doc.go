// Package kubeconfig is the provider for a cluster the suite did not
// make, reached only through a kubeconfig (PROVIDER=kubeconfig, and the
// terraform provider once its module has applied). It tests the proxier
// the cluster runs, finding each node's mode rather than assuming it;
// node-level work goes through a privileged hostNetwork helper DaemonSet
// in the suite's own namespace. It must never change anything outside
// the namespaces it labels as its own.
package kubeconfig
