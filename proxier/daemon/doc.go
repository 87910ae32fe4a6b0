// Package daemon is the proxier process: informers feed the state tracker,
// a bounded-frequency loop hands snapshots to the mode, and health, metrics,
// conntrack cleanup and events follow every sync. It holds no Kubernetes
// semantics (state does) and no kernel language (modes do).
package daemon
