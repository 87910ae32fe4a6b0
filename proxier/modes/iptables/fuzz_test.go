package iptables

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// bytesIn hands out fuzz input; past the end it yields zeros.
type bytesIn struct {
	b []byte
	i int
}

func (r *bytesIn) byte() byte {
	if r.i >= len(r.b) {
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *bytesIn) bool() bool { return r.byte()&1 == 1 }

func (r *bytesIn) int32() int32 {
	return int32(uint32(r.byte())<<24 | uint32(r.byte())<<16 | uint32(r.byte())<<8 | uint32(r.byte()))
}

// port is mostly a plausible port, sometimes any int32.
func (r *bytesIn) port() int32 {
	switch r.byte() % 8 {
	case 0:
		return 0
	case 1:
		return r.int32()
	default:
		return int32(r.byte())<<8 | int32(r.byte())
	}
}

// addr is mostly of family, sometimes the other one, invalid or mapped.
func (r *bytesIn) addr(family v1.IPFamily) netip.Addr {
	k := r.byte() % 10
	switch {
	case k == 0:
		return netip.Addr{}
	case k == 1:
		family = map[v1.IPFamily]v1.IPFamily{v1.IPv4Protocol: v1.IPv6Protocol, v1.IPv6Protocol: v1.IPv4Protocol}[family]
	case k == 2:
		return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 10, 13: r.byte(), 14: r.byte(), 15: r.byte()})
	}
	if family == v1.IPv6Protocol {
		return netip.AddrFrom16([16]byte{0: 0xfd, 1: r.byte(), 14: r.byte(), 15: r.byte()})
	}
	return netip.AddrFrom4([4]byte{r.byte(), r.byte(), r.byte(), r.byte()})
}

func (r *bytesIn) prefix(family v1.IPFamily) netip.Prefix {
	p, _ := r.addr(family).Prefix(int(r.byte() % 129))
	return p
}

var fuzzWords = []string{"", "web", "p80", "kube-dns", "a b", `q"uote`, "-j", "ACCEPT", "ns\n1", "ünï", "x;y", "/"}

func (r *bytesIn) word() string { return fuzzWords[int(r.byte())%len(fuzzWords)] }

var fuzzProtocols = []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP, "", "ICMP"}

// decodeView turns fuzz bytes into a View and a config: type-valid, but
// not necessarily what state would produce.
func decodeView(b []byte) (*state.View, renderConfig) {
	r := &bytesIn{b: b}
	family := v1.IPv4Protocol
	if r.bool() {
		family = v1.IPv6Protocol
	}
	cfg := renderConfig{family: family, masqMark: "0x00004000", masqueradeAll: r.bool(),
		localhostNodePorts: r.bool(), conntrackLiberal: r.bool(), nodePortAll: r.bool()}
	switch r.byte() % 3 {
	case 1:
		cfg.localDetect = LocalDetect{Mode: LocalClusterCIDR, ClusterCIDRs: []netip.Prefix{r.prefix(family)}}
	case 2:
		cfg.localDetect = LocalDetect{Mode: LocalNodeCIDR}
	}
	for range r.byte() % 3 {
		cfg.nodePortIPs = append(cfg.nodePortIPs, r.addr(family))
	}
	v := &state.View{Family: family, Services: map[state.ServicePortName]*state.ServicePort{}}
	v.Node.IPs = []netip.Addr{r.addr(family)}
	v.Node.PodCIDRs = []netip.Prefix{r.prefix(family)}
	for range r.byte() % 8 {
		name := spn(r.word(), r.word(), r.word())
		name.Protocol = fuzzProtocols[int(r.byte())%len(fuzzProtocols)]
		sp := &state.ServicePort{Name: name, Protocol: name.Protocol, ClusterIP: r.addr(family), Port: r.port(),
			ExternalPolicyLocal: r.bool(), InternalPolicyLocal: r.bool(), SessionAffinity: r.bool(), HasEndpoints: r.bool()}
		if r.bool() {
			sp.NodePort = r.port()
		}
		if r.bool() {
			sp.HealthCheckNodePort = r.port()
		}
		sp.StickySeconds = r.int32()
		for range r.byte() % 3 {
			sp.ExternalIPs = append(sp.ExternalIPs, r.addr(family))
		}
		for range r.byte() % 3 {
			sp.LoadBalancerIPs = append(sp.LoadBalancerIPs, r.addr(family))
		}
		for range r.byte() % 3 {
			sp.LoadBalancerSourceRanges = append(sp.LoadBalancerSourceRanges, r.prefix(family))
		}
		for range r.byte() % 6 {
			e := state.Endpoint{IP: r.addr(family), Port: r.port(), IsLocal: r.bool(), Ready: r.bool()}
			if r.bool() {
				sp.ClusterEndpoints = append(sp.ClusterEndpoints, e)
			}
			if r.bool() {
				sp.LocalEndpoints = append(sp.LocalEndpoints, e)
			}
			sp.AllEndpoints = append(sp.AllEndpoints, e)
		}
		v.Services[name] = sp
	}
	return v, cfg
}

// FuzzRender checks that no View makes rendering panic or produce input
// iptables-restore refuses (checked with --test in a scratch namespace
// when root; the in-memory check runs everywhere).
func FuzzRender(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x00\x01\x01\x01\x02\x05\x0a\x00\x00\x01\x03\x0a\xb4\x00\x00\x18\x07\x01\x02\x03\x00"))
	ns := ""
	if _, err := exec.LookPath("iptables-restore"); err == nil && os.Geteuid() == 0 {
		ns = scratchNS(f, "")
	} else {
		f.Log("not root or no iptables-restore: checking rendering without the kernel")
	}
	real := &Exec{NetNS: ns}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, cfg := decodeView(b)
		out := newRenderer(cfg).render(renderInput{view: v, full: true})
		if err := NewFake().Restore(context.Background(), out.data, RestoreFlags{Test: true}); err != nil {
			t.Fatalf("in-memory restore refused the rendering: %v\n%s", err, out.data)
		}
		if ns == "" {
			return
		}
		real.Family = cfg.family
		if err := real.Restore(context.Background(), out.data, RestoreFlags{Test: true}); err != nil {
			t.Fatalf("iptables-restore --test refused the rendering: %v", err)
		}
	})
}
