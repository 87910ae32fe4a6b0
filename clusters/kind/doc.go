// Package kind is the kind provider: clusters of Docker-container nodes
// made with sigs.k8s.io/kind used as a library, with kube-proxy disabled,
// a small pod network of our own (Debian's CNI plugins, no pull) and the
// proxier (ours or upstream kube-proxy) deployed as DaemonSets from
// manifests/.
//
// A cluster lives on an internal Docker network of its own: nothing it
// sends can leave the machine, and the API server is reached at the
// control-plane container's address on that network. It must never pull
// an image of ours or write the user's kubeconfig.
package kind
