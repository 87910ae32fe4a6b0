// Package iptables is the iptables proxy mode: it renders a state.View into
// kube-proxy's chain model (KUBE-SERVICES, KUBE-SVC-*, KUBE-SEP-* ...) and
// applies it with one iptables-restore per sync. It holds no Kubernetes
// semantics and never lets a string from the API reach iptables unescaped.
package iptables
