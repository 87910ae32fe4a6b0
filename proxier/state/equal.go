package state

import "slices"

// samePort reports whether a and b render the same: a ServicePort that
// compares equal keeps its old pointer and is not reported as changed.
func samePort(a, b *ServicePort) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return a.Name == b.Name && a.Protocol == b.Protocol && a.ClusterIP == b.ClusterIP &&
		a.Port == b.Port && a.NodePort == b.NodePort &&
		slices.Equal(a.ExternalIPs, b.ExternalIPs) &&
		slices.Equal(a.LoadBalancerIPs, b.LoadBalancerIPs) &&
		slices.Equal(a.LoadBalancerSourceRanges, b.LoadBalancerSourceRanges) &&
		a.ExternalPolicyLocal == b.ExternalPolicyLocal && a.InternalPolicyLocal == b.InternalPolicyLocal &&
		a.HealthCheckNodePort == b.HealthCheckNodePort &&
		a.SessionAffinity == b.SessionAffinity && a.StickySeconds == b.StickySeconds &&
		a.Scheduler == b.Scheduler &&
		a.HasEndpoints == b.HasEndpoints &&
		sameEndpoints(a.ClusterEndpoints, b.ClusterEndpoints) &&
		sameEndpoints(a.LocalEndpoints, b.LocalEndpoints) &&
		sameEndpoints(a.AllEndpoints, b.AllEndpoints)
}

func sameEndpoints(a, b []Endpoint) bool {
	return slices.EqualFunc(a, b, func(x, y Endpoint) bool {
		return x.IP == y.IP && x.Port == y.Port && x.NodeName == y.NodeName && x.Zone == y.Zone &&
			x.Ready == y.Ready && x.Serving == y.Serving && x.Terminating == y.Terminating &&
			x.IsLocal == y.IsLocal &&
			sameHints(x.Hints, y.Hints)
	})
}

func sameHints(a, b *Hints) bool {
	return a == b || slices.Equal(a.forZones(), b.forZones()) && slices.Equal(a.forNodes(), b.forNodes())
}

func sameProblems(a, b []Problem) bool { return slices.Equal(a, b) }
