package clusters

import (
	"context"
	"time"
)

// ProxierChange is what a restarted proxier runs with; a zero field keeps
// what the node's proxier ran before.
type ProxierChange struct {
	// Mode is the proxier mode to restart in (ModeIPTables, ...).
	Mode string
	// Scheduler is the IPVS scheduler (KubeProxyConfiguration
	// ipvs.scheduler): rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh.
	Scheduler string
	// Flags are extra command-line flags, after the configuration file.
	Flags []string
	// Cleanup runs the proxier's --cleanup with its old configuration
	// between stopping it and starting it again: how kube-proxy's mode is
	// switched by hand (stop, kube-proxy --cleanup, start in the new mode).
	Cleanup bool
}

// ProxierRestarter is an optional capability of a Cluster: restart one
// node's proxier, optionally with another configuration. Specs that need
// it type-assert and skip, saying so, on a cluster that lacks it.
type ProxierRestarter interface {
	// RestartProxier stops node's proxier, starts it again with change
	// applied (kept for later restarts) and returns when the new process
	// serves: its /healthz answered 200, which kube-proxy and ours do
	// only after their first sync. served is that moment.
	RestartProxier(ctx context.Context, node string, change ProxierChange) (served time.Time, err error)
}

// IPVSSchedulers are the schedulers kube-proxy's ipvs.scheduler accepts
// (every one Linux IPVS ships); "" means rr.
var IPVSSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq", "mh"}

// ExtensionIPVSSchedulerAnnotation is our proxier's per-Service IPVS
// scheduler: the Service annotation of that name overrides ipvs.scheduler.
const ExtensionIPVSSchedulerAnnotation = "ipvs.proxyproof.dev/scheduler"

// ProxierExtensions is an optional capability of a Cluster: the
// extensions beyond kube-proxy's behaviour that its proxier declares
// (ExtensionIPVSSchedulerAnnotation, ...). Specs of an extension skip on
// a cluster that does not declare it.
type ProxierExtensions interface {
	ProxierExtensions() []string
}
