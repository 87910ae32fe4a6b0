// Package image assembles the container images a kind cluster needs here
// without a registry or `docker build`: the control-plane images kubeadm
// asks for, under exactly its names, the proxier, upstream kube-proxy and
// the suites' netserver. Each is a few tar layers of files from this
// machine (binaries built from source, files of Debian packages) on an
// empty image, written as a docker archive that `docker load` and
// `ctr images import` read. It never pulls anything.
package image
