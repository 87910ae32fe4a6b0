package state

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// Topology modes, as upstream's topologyModeFromHints returns them.
const (
	topologyNone     = ""
	topologySameNode = v1.ServiceTrafficDistributionPreferSameNode
	topologySameZone = v1.ServiceTrafficDistributionPreferSameZone
)

// categorize fills sp's ClusterEndpoints, LocalEndpoints, AllEndpoints and
// HasEndpoints from eps (sorted, merged), following upstream's
// CategorizeEndpoints (pkg/proxy/topology.go, v1.34, with
// PreferSameTrafficDistribution on):
//
//   - Cluster endpoints are the ready ones, filtered by topology hints when
//     they apply; when none is ready anywhere, the serving-terminating ones.
//     nil when the port never uses Cluster policy.
//   - Local endpoints are the local ready ones, else the local
//     serving-terminating ones. nil when the port never uses Local policy.
//   - HasEndpoints is true when any endpoint anywhere is usable, even if
//     none is reachable from this node.
func categorize(sp *ServicePort, eps []Endpoint, nodeName, zone string) {
	sp.ClusterEndpoints, sp.LocalEndpoints, sp.AllEndpoints, sp.HasEndpoints = nil, nil, nil, false
	if len(eps) == 0 {
		return
	}
	usesCluster := !sp.InternalPolicyLocal || sp.ExternallyAccessible()
	usesLocal := sp.InternalPolicyLocal || (sp.ExternalPolicyLocal && sp.ExternallyAccessible())

	inCluster := func(Endpoint) bool { return false }
	mode := topologyNone
	if usesCluster {
		mode = topologyModeFromHints(sp, eps, nodeName, zone)
		inCluster = func(ep Endpoint) bool { return ep.Ready && availableForTopology(ep, mode, nodeName, zone) }
		sp.ClusterEndpoints = filter(eps, inCluster)
		if len(sp.ClusterEndpoints) == 0 {
			// Topology already fell back when no ready endpoint matched it,
			// so here nothing is ready anywhere.
			inCluster = servingTerminating
			sp.ClusterEndpoints = filter(eps, inCluster)
		}
		sp.HasEndpoints = len(sp.ClusterEndpoints) > 0
	}
	if !usesLocal {
		sp.AllEndpoints = sp.ClusterEndpoints
		return
	}

	var localReady, localTerminating bool
	for _, ep := range eps {
		switch {
		case ep.Ready:
			sp.HasEndpoints = true
			localReady = localReady || ep.IsLocal
		case servingTerminating(ep):
			sp.HasEndpoints = true
			localTerminating = localTerminating || ep.IsLocal
		}
	}
	useTerminatingLocal := !localReady && localTerminating
	inLocal := func(Endpoint) bool { return false }
	switch {
	case localReady:
		inLocal = func(ep Endpoint) bool { return ep.IsLocal && ep.Ready }
	case useTerminatingLocal:
		inLocal = func(ep Endpoint) bool { return ep.IsLocal && servingTerminating(ep) }
	}
	sp.LocalEndpoints = filter(eps, inLocal)

	switch {
	case !usesCluster:
		sp.AllEndpoints = sp.LocalEndpoints
	case mode == topologyNone && !useTerminatingLocal:
		// Cluster holds every ready endpoint and Local only ready ones.
		sp.AllEndpoints = sp.ClusterEndpoints
	default:
		// Both are subsequences of eps, so filtering eps keeps the order.
		sp.AllEndpoints = filter(eps, func(ep Endpoint) bool { return inCluster(ep) || inLocal(ep) })
	}
}

func servingTerminating(ep Endpoint) bool { return ep.Serving && ep.Terminating }

// topologyModeFromHints applies hints only when every ready endpoint has
// one and at least one is for this node (node hints, preferred) or zone.
func topologyModeFromHints(sp *ServicePort, eps []Endpoint, nodeName, zone string) string {
	hasReady, forNode, allNodeHints, forZone, allZoneHints := false, false, true, false, true
	for _, ep := range eps {
		if !ep.Ready {
			continue
		}
		hasReady = true
		if nodes := ep.Hints.forNodes(); len(nodes) == 0 {
			allNodeHints = false
		} else if slices.Contains(nodes, nodeName) {
			forNode = true
		}
		if zones := ep.Hints.forZones(); len(zones) == 0 {
			allZoneHints = false
		} else if slices.Contains(zones, zone) {
			forZone = true
		}
	}
	if !hasReady {
		return topologyNone
	}
	if allNodeHints {
		if forNode {
			return topologySameNode
		}
		klog.V(2).InfoS("Ignoring same-node topology hints for service since no hints were provided for node", "service", sp.Name, "node", nodeName)
	}
	if allZoneHints {
		if forZone {
			return topologySameZone
		}
		if zone == "" {
			klog.V(2).InfoS("Ignoring same-zone topology hints for service since node is missing label", "service", sp.Name, "label", v1.LabelTopologyZone)
		} else {
			klog.V(2).InfoS("Ignoring same-zone topology hints for service since no hints were provided for zone", "service", sp.Name, "zone", zone)
		}
	}
	return topologyNone
}

func availableForTopology(ep Endpoint, mode, nodeName, zone string) bool {
	switch mode {
	case topologyNone:
		return true
	case topologySameNode:
		return slices.Contains(ep.Hints.forNodes(), nodeName)
	case topologySameZone:
		return slices.Contains(ep.Hints.forZones(), zone)
	default:
		return false
	}
}

// filter returns the endpoints keep accepts, or nil when there are none
// (views use nil for "no endpoints"). When keep accepts all, eps itself is
// returned: views are immutable, so lists may share arrays.
func filter(eps []Endpoint, keep func(Endpoint) bool) []Endpoint {
	var out []Endpoint
	for i, ep := range eps {
		if keep(ep) {
			if out != nil {
				out = append(out, ep)
			}
			continue
		}
		if out == nil {
			out = make([]Endpoint, i, len(eps))
			copy(out, eps[:i])
		}
	}
	if out == nil {
		if len(eps) == 0 {
			return nil
		}
		return eps
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
