package ipvs

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// IPVS service flags (linux/ip_vs.h).
const (
	flagPersistent = 0x1
	flagHashed     = 0x2
	// flagSourceHashPort is IP_VS_SVC_F_SCHED2, which upstream sets for
	// the mh scheduler ("mh-port": hash the source port too).
	flagSourceHashPort = 0x10
	// flagHashFallback is IP_VS_SVC_F_SCHED1, "sh-fallback"/"mh-fallback":
	// a source hashed to a real server of weight 0 goes to the next
	// available one. Upstream does not set it, and its graceful
	// termination keeps a removed TCP real server at weight 0 while its
	// connections drain; sh and mh keep that server's slots (mh by its
	// last weight), so without the flag every new connection hashed there
	// is refused until the server is deleted (the suite's mh spec saw 21
	// of 64 refused in the kernel VM).
	flagHashFallback = 0x08
)

// vsKey names one virtual server.
type vsKey struct {
	addr  netip.Addr
	port  uint16
	proto uint16
}

func (k vsKey) String() string {
	return protoName(k.proto) + "/" + netip.AddrPortFrom(k.addr, k.port).String()
}

// vServer is what one virtual server must be.
type vServer struct {
	sched   string
	flags   uint32
	timeout uint32
	// dests are the real servers and their weights.
	dests map[netip.AddrPort]int
}

func (v *vServer) sameAttrs(o *vServer) bool {
	return v.sched == o.sched && v.flags == o.flags && v.timeout == o.timeout
}

// svcDesired is everything one ServicePort puts into the kernel; the
// applied copy of it is what lets a partial sync diff without reading
// the kernel back.
type svcDesired struct {
	servers map[vsKey]*vServer
	// addrs go on kube-ipvs0 (ClusterIP, externalIPs and LoadBalancer IPs
	// that are not already node addresses).
	addrs   []netip.Addr
	entries []setEntry
}

// nodeInfo is what the desired state needs from the node, refreshed on
// every full sync.
type nodeInfo struct {
	// nodePortIPs are the addresses NodePort virtual servers listen on.
	nodePortIPs []netip.Addr
	// local are all addresses of the node except kube-ipvs0's: an
	// externalIP among them must not be bound again.
	local map[netip.Addr]bool
	// primary is the node's first IP of the family (from the Node), for
	// loadBalancerSourceRanges that admit the node itself.
	primary netip.Addr
}

func (p *Proxier) inFamily(a netip.Addr) bool {
	if p.opts.Family == v1.IPv6Protocol {
		return a.Is6() && !a.Is4In6()
	}
	return a.Is4()
}

func familyOf(a netip.Addr) uint16 {
	if a.Is4() {
		return 2 // AF_INET
	}
	return 10 // AF_INET6
}

// desired translates one ServicePort. An error means the ServicePort
// cannot be programmed at all and is skipped.
func (p *Proxier) desired(sp *state.ServicePort, node *nodeInfo) (*svcDesired, error) {
	proto := protoNumber(string(sp.Protocol))
	if proto == 0 {
		return nil, fmt.Errorf("protocol %q is not TCP, UDP or SCTP", sp.Protocol)
	}
	if sp.Port <= 0 || sp.Port > 65535 {
		return nil, fmt.Errorf("port %d out of range", sp.Port)
	}
	cip := sp.ClusterIP.Unmap()
	if !cip.IsValid() || !p.inFamily(cip) {
		return nil, fmt.Errorf("cluster IP %s is not %s", sp.ClusterIP, p.opts.Family)
	}
	d := &svcDesired{servers: map[vsKey]*vServer{}}
	port := uint16(sp.Port)
	sched := p.opts.Scheduler
	// The Service's own scheduler (state.SchedulerAnnotation); state has
	// already refused unknown names with a Problem.
	if sp.Scheduler != "" {
		sched = sp.Scheduler
	}
	var flags, timeout uint32
	if sp.SessionAffinity {
		flags |= flagPersistent
		timeout = uint32(max(sp.StickySeconds, 1))
	}
	switch sched {
	case "mh":
		flags |= flagSourceHashPort | flagHashFallback
	case "sh":
		flags |= flagHashFallback
	}
	newVS := func(eps []state.Endpoint) *vServer {
		vs := &vServer{sched: sched, flags: flags, timeout: timeout, dests: make(map[netip.AddrPort]int, len(eps))}
		for _, ep := range eps {
			ip := ep.IP.Unmap()
			if !p.inFamily(ip) || ep.Port <= 0 || ep.Port > 65535 {
				continue
			}
			w := 1
			if p.opts.WeightFor != nil {
				if x := p.opts.WeightFor(sp.Name, ep); x > 0 {
					w = x
				}
			}
			vs.dests[netip.AddrPortFrom(ip, uint16(ep.Port))] = w
		}
		return vs
	}
	internal, external := endpointsFor(sp)
	bind := func(a netip.Addr) {
		d.addrs = append(d.addrs, a)
		d.entries = append(d.entries, setEntry{setIPVSIPs, Entry{IP: a}})
	}
	ipPort := func(a netip.Addr) Entry { return Entry{IP: a, Protocol: uint8(proto), Port: port} }

	// Hairpin: a local endpoint reaching itself through the Service.
	for _, ep := range sp.AllEndpoints {
		ip := ep.IP.Unmap()
		if ep.IsLocal && p.inFamily(ip) && ep.Port > 0 && ep.Port <= 65535 {
			d.entries = append(d.entries, setEntry{setLoopBack, Entry{IP: ip, Protocol: uint8(proto), Port: uint16(ep.Port), IP2: ip}})
		}
	}

	d.servers[vsKey{cip, port, proto}] = newVS(internal)
	bind(cip)
	d.entries = append(d.entries, setEntry{setClusterIP, ipPort(cip)})

	for _, a := range sp.ExternalIPs {
		a = a.Unmap()
		if !p.inFamily(a) {
			continue
		}
		set := setExternalIP
		if sp.ExternalPolicyLocal {
			set = setExternalIPLocal
		}
		d.entries = append(d.entries, setEntry{set, ipPort(a)})
		d.servers[vsKey{a, port, proto}] = newVS(external)
		if !node.local[a] {
			bind(a)
		}
	}

	for _, a := range sp.LoadBalancerIPs {
		a = a.Unmap()
		if !p.inFamily(a) {
			continue
		}
		d.entries = append(d.entries, setEntry{setLoadBalancer, ipPort(a)})
		if sp.ExternalPolicyLocal {
			d.entries = append(d.entries, setEntry{setLoadBalancerLocal, ipPort(a)})
		}
		if len(sp.LoadBalancerSourceRanges) > 0 {
			d.entries = append(d.entries, setEntry{setLoadBalancerFW, ipPort(a)})
			allowNode := false
			for _, r := range sp.LoadBalancerSourceRanges {
				r = netip.PrefixFrom(r.Addr().Unmap(), r.Bits()).Masked()
				if !p.inFamily(r.Addr()) {
					continue
				}
				d.entries = append(d.entries, setEntry{setLBSourceCIDR, Entry{IP: a, Protocol: uint8(proto), Port: port, Net: r}})
				if node.primary.IsValid() && r.Contains(node.primary) {
					allowNode = true
				}
			}
			// The node reaches its own LB IP with that IP as source.
			if allowNode {
				d.entries = append(d.entries, setEntry{setLBSourceIP, Entry{IP: a, Protocol: uint8(proto), Port: port, IP2: a}})
			}
		}
		d.servers[vsKey{a, port, proto}] = newVS(external)
		if !node.local[a] {
			bind(a)
		}
	}

	if sp.NodePort > 0 && sp.NodePort <= 65535 && len(node.nodePortIPs) > 0 {
		np := uint16(sp.NodePort)
		set, localSet := nodePortSets(proto)
		if proto == protoSCTP {
			// SCTP sets are hash:ip,port: one entry per node address.
			for _, a := range node.nodePortIPs {
				e := Entry{IP: a, Protocol: uint8(proto), Port: np}
				d.entries = append(d.entries, setEntry{set, e})
				if sp.ExternalPolicyLocal {
					d.entries = append(d.entries, setEntry{localSet, e})
				}
			}
		} else {
			d.entries = append(d.entries, setEntry{set, Entry{Port: np}})
			if sp.ExternalPolicyLocal {
				d.entries = append(d.entries, setEntry{localSet, Entry{Port: np}})
			}
		}
		for _, a := range node.nodePortIPs {
			d.servers[vsKey{a, np, proto}] = newVS(external)
		}
	}
	if sp.HealthCheckNodePort > 0 && sp.HealthCheckNodePort <= 65535 {
		d.entries = append(d.entries, setEntry{setHealthCheckNodePort, Entry{Port: uint16(sp.HealthCheckNodePort)}})
	}
	return d, nil
}

const protoSCTP = 132

func nodePortSets(proto uint16) (set, local string) {
	switch proto {
	case protoSCTP:
		return setNodePortSCTP, setNodePortLocalSCTP
	case 17:
		return setNodePortUDP, setNodePortLocalUDP
	}
	return setNodePortTCP, setNodePortLocalTCP
}

// endpointsFor picks the real servers of the ClusterIP and of the
// external virtual servers. Like upstream (kubernetes#97081), a Local
// policy with no local endpoint falls back to the cluster-wide ones when
// the other policy is Cluster: one IPVS virtual server cannot tell a pod
// of this node (which may use any endpoint) from an outside client.
func endpointsFor(sp *state.ServicePort) (internal, external []state.Endpoint) {
	if !sp.HasEndpoints {
		return nil, nil
	}
	internal, external = sp.ClusterEndpoints, sp.ClusterEndpoints
	if sp.InternalPolicyLocal {
		internal = sp.LocalEndpoints
		if len(internal) == 0 && !sp.ExternalPolicyLocal {
			internal = sp.ClusterEndpoints
		}
	}
	if sp.ExternalPolicyLocal {
		external = sp.LocalEndpoints
		if len(external) == 0 && !sp.InternalPolicyLocal {
			external = sp.ClusterEndpoints
		}
	}
	return internal, external
}
