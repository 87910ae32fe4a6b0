// Package metrics holds the proxier's Prometheus metrics under kube-proxy's
// exact names, labels and buckets, in a registry of its own, and serves them
// with /proxyMode, /configz and /healthz like kube-proxy's metrics server.
// It must never register into the global Prometheus registry.
package metrics
