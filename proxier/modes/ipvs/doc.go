// Package ipvs is the IPVS proxy mode: it translates the state view into
// IPVS virtual and real servers, addresses on kube-ipvs0, ipsets and a
// fixed set of iptables rules. It holds no Kubernetes semantics and never
// falls back to iptables when the kernel lacks ip_vs (kubernetes#63801).
package ipvs
