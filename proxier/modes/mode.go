// Package modes defines what a proxy mode is: a translator from the state
// view into one kernel's language. A mode holds no Kubernetes semantics.
package modes

import (
	"context"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// Mode programs the kernel for one node.
type Mode interface {
	// Name is the mode as in the config: "iptables", "nftables", "ipvs".
	Name() string
	// Sync makes the kernel match view. changes lists what differs from the
	// previous call; a mode may rewrite more than that (and must, when
	// changes.Full is set or it finds its rules altered by someone else).
	// A bad ServicePort is skipped and logged; it never fails the others.
	Sync(ctx context.Context, view *state.View, changes *state.Changes) (Result, error)
	// Cleanup removes everything this mode ever created. Safe to run twice.
	Cleanup(ctx context.Context) error
}

// Result describes one sync for metrics and logs.
type Result struct {
	// Full is true when the whole ruleset was written.
	Full bool
	// Rules counts rules (or elements) per table/kind, e.g. "nat" -> 1234,
	// for kubeproxy_sync_proxy_rules_iptables_total and friends.
	Rules map[string]int
}
