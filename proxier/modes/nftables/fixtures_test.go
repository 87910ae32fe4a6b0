package nftables

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// Fixture builders: the View contract is state/types.go; semantics (which
// endpoints are cluster/local) are set here the way the tracker would.

func spName(ns, name, port string) state.ServicePortName {
	return state.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: port, Protocol: v1.ProtocolTCP}
}

func ep(ip string, port int32, local bool) state.Endpoint {
	return state.Endpoint{IP: netip.MustParseAddr(ip), Port: port, Ready: true, Serving: true, IsLocal: local, NodeName: map[bool]string{true: "node-a", false: "node-b"}[local]}
}

// svc builds a ClusterIP ServicePort whose endpoints are all usable.
func svc(ns, name, port, clusterIP string, p int32, eps ...state.Endpoint) *state.ServicePort {
	sp := &state.ServicePort{
		Name: spName(ns, name, port), Protocol: v1.ProtocolTCP,
		ClusterIP: netip.MustParseAddr(clusterIP), Port: p,
	}
	setEndpoints(sp, eps...)
	return sp
}

func setEndpoints(sp *state.ServicePort, eps ...state.Endpoint) {
	sp.ClusterEndpoints, sp.LocalEndpoints, sp.AllEndpoints = nil, nil, nil
	for _, e := range eps {
		sp.ClusterEndpoints = append(sp.ClusterEndpoints, e)
		if e.IsLocal {
			sp.LocalEndpoints = append(sp.LocalEndpoints, e)
		}
	}
	sp.HasEndpoints = len(eps) > 0
	// AllEndpoints: every endpoint a rule of this node may send to.
	if sp.InternalPolicyLocal && !sp.ExternallyAccessible() {
		sp.AllEndpoints = sp.LocalEndpoints
	} else {
		sp.AllEndpoints = sp.ClusterEndpoints
	}
}

func view(sps ...*state.ServicePort) *state.View {
	v := &state.View{
		Family: v1.IPv4Protocol,
		Node: state.Node{Name: "node-a", IPs: []netip.Addr{netip.MustParseAddr("192.168.0.2")},
			PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}},
		Services: map[state.ServicePortName]*state.ServicePort{},
	}
	for _, sp := range sps {
		v.Services[sp.Name] = sp
	}
	return v
}

func full() *state.Changes { return &state.Changes{Full: true} }

func changed(names ...state.ServicePortName) *state.Changes {
	c := &state.Changes{Services: map[state.ServicePortName]struct{}{}}
	for _, n := range names {
		c.Services[n] = struct{}{}
	}
	return c
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// goldenCases are the fixed Views rendered by the golden, Check and kernel tests.
func goldenCases() []struct {
	name string
	view *state.View
} {
	np := func() *state.ServicePort {
		sp := svc("ns1", "web", "http", "172.30.0.10", 80)
		sp.NodePort = 30080
		setEndpoints(sp, ep("10.0.1.5", 8080, true), ep("10.0.2.5", 8080, false))
		return sp
	}
	etpLocal := func(local bool) *state.ServicePort {
		sp := np()
		sp.ExternalPolicyLocal = true
		sp.HealthCheckNodePort = 31000
		if local {
			setEndpoints(sp, ep("10.0.1.5", 8080, true), ep("10.0.2.5", 8080, false))
		} else {
			setEndpoints(sp, ep("10.0.2.5", 8080, false))
		}
		return sp
	}
	itpLocal := svc("ns1", "itp", "", "172.30.0.11", 53)
	itpLocal.InternalPolicyLocal = true
	setEndpoints(itpLocal, ep("10.0.1.6", 53, true), ep("10.0.2.6", 53, false))
	affinity := svc("ns1", "sticky", "", "172.30.0.12", 80)
	affinity.SessionAffinity, affinity.StickySeconds = true, 10800
	setEndpoints(affinity, ep("10.0.1.7", 80, true), ep("10.0.2.7", 80, false))
	lb := svc("ns2", "lb", "https", "172.30.0.13", 443)
	lb.NodePort = 30443
	lb.LoadBalancerIPs = addrs("203.0.113.7")
	lb.LoadBalancerSourceRanges = prefixes("198.51.100.0/24", "192.168.0.0/16")
	setEndpoints(lb, ep("10.0.1.8", 8443, true))
	ext := svc("ns2", "ext", "", "172.30.0.14", 8080)
	ext.ExternalIPs = addrs("198.51.100.20")
	setEndpoints(ext, ep("10.0.2.9", 8080, false))
	many := svc("ns3", "many", "", "172.30.0.15", 80,
		ep("10.0.1.10", 80, true), ep("10.0.2.10", 80, false), ep("10.0.3.10", 80, false), ep("10.0.4.10", 80, false))
	noEPs := svc("ns1", "empty", "", "172.30.0.16", 80)
	noEPs.NodePort = 30016
	return []struct {
		name string
		view *state.View
	}{
		{"clusterip", view(svc("ns1", "db", "", "172.30.0.20", 5432, ep("10.0.1.2", 5432, true)))},
		{"no-endpoints", view(noEPs)},
		{"nodeport", view(np())},
		{"etp-local-with-local-endpoints", view(etpLocal(true))},
		{"etp-local-without-local-endpoints", view(etpLocal(false))},
		{"itp-local", view(itpLocal)},
		{"affinity", view(affinity)},
		{"loadbalancer-source-ranges", view(lb)},
		{"external-ips", view(ext)},
		{"several-endpoints", view(many)},
	}
}

var (
	mapRuleRE  = regexp.MustCompile(`dnat ip6? to numgen random mod 65536 (?:offset (\d+) )?map @(endpoints-\d+)$`)
	mapElemRE  = regexp.MustCompile(`^add element ip6? kube-proxy (endpoints-\d+) \{ (\d+)-(\d+) : (.*) \}$`)
	mapDeclRE  = regexp.MustCompile(`^add map ip6? kube-proxy endpoints-\d+ `)
	slotOffset = func(s string) int { n, _ := strconv.Atoi(s); return n }
)

// withoutSlots rewrites a Fake's dump so that which slot of which endpoints
// map a chain got does not matter, only what it spreads its traffic over:
// each load-balancing rule becomes its ranges relative to its offset, and
// the maps and their elements go. Two tables that load-balance the same
// way compare equal; any endpoint or share that differs still shows.
func withoutSlots(dump string) string {
	type rng struct {
		lo, hi int
		value  string
	}
	elems := map[string][]rng{}
	var lines []string
	for _, l := range strings.Split(dump, "\n") {
		if m := mapElemRE.FindStringSubmatch(l); m != nil {
			elems[m[1]] = append(elems[m[1]], rng{slotOffset(m[2]), slotOffset(m[3]), m[4]})
			continue
		}
		if !mapDeclRE.MatchString(l) {
			lines = append(lines, l)
		}
	}
	for i, l := range lines {
		m := mapRuleRE.FindStringSubmatchIndex(l)
		if m == nil {
			continue
		}
		off := 0
		if m[2] >= 0 {
			off = slotOffset(l[m[2]:m[3]])
		}
		var spread []string
		for _, r := range elems[l[m[4]:m[5]]] {
			if r.lo >= off && r.lo < off+slotWidth {
				spread = append(spread, fmt.Sprintf("%d-%d : %s", r.lo-off, r.hi-off, r.value))
			}
		}
		sort.Strings(spread)
		lines[i] = l[:m[0]] + "dnat to one of { " + strings.Join(spread, ", ") + " }"
	}
	return strings.Join(lines, "\n")
}
