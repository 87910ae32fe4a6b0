package clusters

import (
	"context"
	"strings"
	"time"

	"github.com/proxyproof/proxyproof/clusters/proxierlog"
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

// Restarted is what a restart did.
type Restarted struct {
	// Served is when the new process served: its /healthz answered 200,
	// which kube-proxy and ours do only after their first sync.
	Served time.Time
	// CleanupFailed is why the old configuration's --cleanup exited
	// non-zero (CleanupFailure), when it did. The restart carries on
	// into the new mode all the same, as the hand switch does: upstream
	// kube-proxy v1.34's --cleanup after ipvs exits 1 every time (its
	// iptables part deletes KUBE-MARK-MASQ, which the ipvs chains still
	// jump to, before its ipvs part flushes them); whether a cleanup
	// left state is the node's census's to say.
	CleanupFailed string
}

// ProxierRestarter is an optional capability of a Cluster: restart one
// node's proxier, optionally with another configuration. Specs that need
// it type-assert and skip, saying so, on a cluster that lacks it.
type ProxierRestarter interface {
	// RestartProxier stops node's proxier, starts it again with change
	// applied (kept for later restarts) and returns when the new process
	// serves (Restarted.Served).
	RestartProxier(ctx context.Context, node string, change ProxierChange) (Restarted, error)
}

// cleanupLines is how many of a failed --cleanup's error lines
// CleanupFailure keeps (its last lines when it logged no error).
const cleanupLines = 4

// CleanupFailure is a failed --cleanup (cmd, whose output was output) as
// one line for a report's table: the proxier's errors (proxierlog).
func CleanupFailure(cmd string, output []byte) string {
	lines, _ := proxierlog.Errors(string(output), cleanupLines)
	return strings.Join(append([]string{cmd + " exited non-zero"}, lines...), " | ")
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
