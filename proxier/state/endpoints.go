package state

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// parsedSlice is the part of one EndpointSlice the proxier uses, parsed for
// one render of its Service and then dropped: the informer keeps the object,
// and parsing it again is cheaper than holding a second copy of every
// endpoint.
type parsedSlice struct {
	ports     []slicePort
	endpoints []sliceEndpoint
	problems  []Problem
}

type slicePort struct {
	name  string
	proto v1.Protocol
	port  int32
}

type sliceEndpoint struct {
	ip          netip.Addr
	nodeName    string
	zone        string
	ready       bool
	serving     bool
	terminating bool
	hints       *Hints
}

// parseSlice keeps what kube-proxy keeps of es. Endpoints and ports that
// cannot be used are skipped, each with a Problem.
func parseSlice(es *discoveryv1.EndpointSlice, family v1.IPFamily) *parsedSlice {
	ps := &parsedSlice{}
	name := types.NamespacedName{Namespace: es.Namespace, Name: es.Name}
	problem := func(format string, args ...any) {
		ps.problems = append(ps.problems, Problem{Kind: "EndpointSlice", Object: name, Reason: fmt.Sprintf(format, args...)})
	}
	for i, p := range es.Ports {
		if p.Name == nil {
			problem("ports[%d] has no name (use \"\" for an unnamed port); it is ignored", i)
			continue
		}
		// A nil or zero port means "all ports", which kube-proxy does not
		// implement either; it is silently ignored there too.
		if p.Port == nil || *p.Port == 0 {
			continue
		}
		if *p.Port < 1 || *p.Port > 65535 {
			problem("ports[%d] (%q): port %d is out of range 1-65535; it is ignored", i, *p.Name, *p.Port)
			continue
		}
		proto := v1.ProtocolTCP
		if p.Protocol != nil && *p.Protocol != "" {
			proto = *p.Protocol
		}
		if !knownProtocol(proto) {
			problem("ports[%d] (%q): protocol %q is not TCP, UDP or SCTP; it is ignored", i, *p.Name, proto)
			continue
		}
		ps.ports = append(ps.ports, slicePort{name: *p.Name, proto: proto, port: *p.Port})
	}

	ps.endpoints = make([]sliceEndpoint, 0, len(es.Endpoints))
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		if len(ep.Addresses) == 0 {
			problem("endpoints[%d] has no address; it is ignored", i)
			continue
		}
		ip, err := netip.ParseAddr(ep.Addresses[0])
		if err != nil || ip.Zone() != "" {
			problem("endpoints[%d] address %q is not an IP address; the endpoint is ignored until it is fixed", i, ep.Addresses[0])
			continue
		}
		if ip = ip.Unmap(); !ofFamily(ip, family) {
			problem("endpoints[%d] address %q is not %s as the slice's addressType says; the endpoint is ignored", i, ep.Addresses[0], family)
			continue
		}
		c := ep.Conditions
		se := sliceEndpoint{
			ip:          ip,
			ready:       c.Ready == nil || *c.Ready,
			serving:     c.Serving == nil || *c.Serving,
			terminating: c.Terminating != nil && *c.Terminating,
		}
		if ep.NodeName != nil {
			se.nodeName = *ep.NodeName
		}
		if ep.Zone != nil {
			se.zone = *ep.Zone
		}
		if ep.Hints != nil && len(ep.Hints.ForZones)+len(ep.Hints.ForNodes) > 0 {
			se.hints = &Hints{}
			for _, z := range ep.Hints.ForZones {
				se.hints.Zones = append(se.hints.Zones, z.Name)
			}
			for _, n := range ep.Hints.ForNodes {
				se.hints.Nodes = append(se.hints.Nodes, n.Name)
			}
			se.hints.Zones = sortedSet(se.hints.Zones)
			se.hints.Nodes = sortedSet(se.hints.Nodes)
		}
		ps.endpoints = append(ps.endpoints, se)
	}
	return ps
}

// mergeEndpoints collects the endpoints of one Service port from every
// slice (given in slice-name order), de-duplicated by ip:port and sorted as
// upstream sorts them (by "ip:port" string).
//
// Duplicates happen when an endpoint moves between slices, or when a pod IP
// is reused while the terminating pod still has it: like upstream, a
// non-terminating endpoint wins over a terminating one.
func mergeEndpoints(spn ServicePortName, parsed []*parsedSlice, nodeName string) []Endpoint {
	var out []Endpoint
	for _, s := range parsed {
		for _, p := range s.ports {
			if p.name != spn.Port || p.proto != spn.Protocol {
				continue
			}
			if out == nil {
				out = make([]Endpoint, 0, len(s.endpoints))
			}
			for i := range s.endpoints {
				se := &s.endpoints[i]
				out = append(out, Endpoint{
					IP: se.ip, Port: p.port, NodeName: se.nodeName, Zone: se.zone,
					Ready: se.ready, Serving: se.serving, Terminating: se.terminating,
					IsLocal: nodeName != "" && se.nodeName == nodeName,
					Hints:   se.hints,
				})
			}
		}
	}
	// A stable sort keeps duplicates adjacent and in slice order, which is
	// cheaper than a map for the usual handful of endpoints.
	keys := sortEndpoints(out)
	w := 0
	for r := 0; r < len(out); {
		end := r + 1
		for end < len(out) && keys[end] == keys[r] {
			end++
		}
		// Upstream keeps the first copy unless a later one is not terminating.
		pick := r
		for k := r + 1; k < end; k++ {
			if !out[k].Terminating {
				pick = k
			}
		}
		out[w] = out[pick]
		w++
		r = end
	}
	return out[:w]
}

// sortEndpoints stably orders by the "ip:port" string, upstream's byEndpoint
// order, so that rule order (and thus golden files) match kube-proxy's. It
// returns the sorted keys.
func sortEndpoints(eps []Endpoint) []string {
	keys := make([]string, len(eps))
	for i := range eps {
		keys[i] = eps[i].String()
	}
	if len(eps) > 1 {
		sort.Stable(byKey{keys, eps})
	}
	return keys
}

type byKey struct {
	keys []string
	eps  []Endpoint
}

func (b byKey) Len() int           { return len(b.keys) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.eps[i], b.eps[j] = b.eps[j], b.eps[i]
}

func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// sliceService is the Service a slice belongs to (kubernetes.io/service-name).
func sliceService(es *discoveryv1.EndpointSlice) (types.NamespacedName, bool) {
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" || es.Namespace == "" || es.Name == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: es.Namespace, Name: name}, true
}

// addressTypeOf is the EndpointSlice address type carrying family.
func addressTypeOf(family v1.IPFamily) discoveryv1.AddressType {
	if family == v1.IPv6Protocol {
		return discoveryv1.AddressTypeIPv6
	}
	return discoveryv1.AddressTypeIPv4
}

// triggerTime reads endpoints.kubernetes.io/last-change-trigger-time.
func triggerTime(es *discoveryv1.EndpointSlice) (time.Time, bool) {
	raw := strings.TrimSpace(es.Annotations[v1.EndpointsLastChangeTriggerTime])
	if raw == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
