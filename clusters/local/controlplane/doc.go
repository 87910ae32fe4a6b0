// Package controlplane runs a real, pinned Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) as local processes
// for the local cluster provider. Everything it starts listens on 127.0.0.1
// only, on free ports, so clusters coexist; it must never bind a routable
// address or download anything (binaries come from hack/controlplane/build.sh).
package controlplane
