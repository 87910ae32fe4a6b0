package clusters

// Wrapper is a Cluster that presents another one: terraform's cluster is
// the cluster its module made, reached through the provider that made it
// (kind, kubeconfig). The wrapper overrides what it must (name, provider,
// the module's node modes, Destroy) and nothing else.
type Wrapper interface {
	Unwrap() Cluster
}

// As finds the optional capability T (ProxierRestarter, KernelTuner,
// ProxierExtensions, Limited) on c or on the clusters it wraps, outermost
// first, as errors.As does for errors. A plain type assertion sees only
// the wrapper's own methods: a kind cluster declared in HCL lost its
// proxier restarts that way, and the suite skipped their specs.
func As[T any](c Cluster) (T, bool) {
	for c != nil {
		if t, ok := c.(T); ok {
			return t, true
		}
		w, ok := c.(Wrapper)
		if !ok {
			break
		}
		c = w.Unwrap()
	}
	var zero T
	return zero, false
}
