package app

import (
	"time"

	"k8s.io/utils/clock"

	"github.com/proxyproof/proxyproof/proxier/daemon"
	"github.com/proxyproof/proxyproof/proxier/healthz"
	"github.com/proxyproof/proxyproof/proxier/metrics"
	"github.com/proxyproof/proxyproof/proxier/state"
)

// observer turns the daemon's sync events into kube-proxy's metrics and
// the /healthz state.
type observer struct {
	family string
	health *healthz.ProxyHealth
	clock  clock.PassiveClock
}

var _ daemon.Observer = &observer{}

func (o *observer) Queued(at time.Time) {
	if o.health != nil {
		o.health.QueuedUpdate(at)
	}
	metrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(o.family).Set(float64(at.Unix()))
}

func (o *observer) Synced(r daemon.SyncResult) {
	now := o.clock.Now()
	secs := r.Duration.Seconds()
	metrics.SyncProxyRulesLatency.WithLabelValues(o.family).Observe(secs)
	if r.Full {
		metrics.SyncFullProxyRulesLatency.WithLabelValues(o.family).Observe(secs)
	} else {
		metrics.SyncPartialProxyRulesLatency.WithLabelValues(o.family).Observe(secs)
	}
	metrics.SyncProxyRulesLastTimestamp.WithLabelValues(o.family).Set(float64(now.Unix()))
	for _, t := range r.Changes.TriggerTimes {
		metrics.NetworkProgrammingLatency.WithLabelValues(o.family).Observe(now.Sub(t).Seconds())
	}
	metrics.ServiceChangesTotal.Add(float64(r.Changes.ServiceEvents))
	metrics.EndpointChangesTotal.Add(float64(r.Changes.EndpointEvents))
	metrics.ServiceChangesPending.Set(0)
	metrics.EndpointChangesPending.Set(0)
	if r.Mode == "iptables" {
		for table, n := range r.Rules {
			metrics.IPTablesRulesTotal.WithLabelValues(o.family, table).Set(float64(n))
		}
	}
	internal, external := noLocalEndpoints(r.View)
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues(o.family, "internal").Set(float64(internal))
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues(o.family, "external").Set(float64(external))
	if o.health != nil {
		o.health.SyncNode(r.View.Node)
		o.health.Updated(now)
	}
}

func (o *observer) Unchanged(at time.Time) {
	if o.health != nil {
		o.health.Updated(at)
	}
}

func (o *observer) SyncFailed(mode string, full bool) {
	switch mode {
	case "iptables":
		if full {
			metrics.IPTablesRestoreFailuresTotal.WithLabelValues(o.family).Inc()
		} else {
			metrics.IPTablesPartialRestoreFailuresTotal.WithLabelValues(o.family).Inc()
		}
	case "nftables":
		metrics.NFTablesSyncFailuresTotal.WithLabelValues(o.family).Inc()
	}
}

// noLocalEndpoints counts Services whose Local traffic policy leaves this
// node without an endpoint while the Service has some elsewhere.
func noLocalEndpoints(view *state.View) (internal, external int) {
	for _, sp := range view.Services {
		if !sp.HasEndpoints || len(sp.LocalEndpoints) > 0 {
			continue
		}
		if sp.InternalPolicyLocal {
			internal++
		}
		if sp.ExternalPolicyLocal && sp.ExternallyAccessible() {
			external++
		}
	}
	return internal, external
}
