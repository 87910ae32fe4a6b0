// Package nftables is the nftables proxy mode: it translates a state.View into
// kube-proxy's "kube-proxy" table (same chain, map and set names as upstream)
// and applies it in one nft transaction per sync, touching only what changed.
// It holds no Kubernetes semantics and never falls back to another mode.
package nftables
