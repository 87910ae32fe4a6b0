package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proxyproof/proxyproof/proxier/modes/iptables"
	"github.com/proxyproof/proxyproof/proxier/state"
)

var nodeIP = netip.MustParseAddr("192.0.2.1")

type kernel struct {
	ipvs  *Fake
	ipset *FakeIPSet
	links *FakeLinks
	ipt   *iptables.Fake
	clock *time.Time
}

func newTestProxier(t *testing.T, mod func(*Options)) (*Proxier, *kernel) {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	k := &kernel{ipvs: NewFake(), ipset: NewFakeIPSet(), links: NewFakeLinks(nodeIP, netip.MustParseAddr("127.0.0.1")), ipt: iptables.NewFake(), clock: &now}
	opts := Options{
		IPVS: k.ipvs, IPSet: k.ipset, Links: k.links, Runner: k.ipt,
		Sysctl:      iptables.FakeSysctl{},
		LocalDetect: iptables.LocalDetect{Mode: iptables.LocalClusterCIDR, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}},
		Now:         func() time.Time { return *k.clock },
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, k
}

func spn(name string) state.ServicePortName {
	return state.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "default", Name: name}, Port: "p", Protocol: v1.ProtocolTCP}
}

func ep(ip string, local bool) state.Endpoint {
	return state.Endpoint{IP: netip.MustParseAddr(ip), Port: 8080, Ready: true, Serving: true, IsLocal: local}
}

// svc is a TCP ClusterIP Service on port 80 with endpoints eps; mods
// change it further.
func svc(name, clusterIP string, eps []state.Endpoint, mods ...func(*state.ServicePort)) *state.ServicePort {
	sp := &state.ServicePort{
		Name: spn(name), Protocol: v1.ProtocolTCP, ClusterIP: netip.MustParseAddr(clusterIP), Port: 80,
		ClusterEndpoints: eps, AllEndpoints: eps, HasEndpoints: len(eps) > 0,
	}
	for _, e := range eps {
		if e.IsLocal {
			sp.LocalEndpoints = append(sp.LocalEndpoints, e)
		}
	}
	for _, m := range mods {
		m(sp)
	}
	return sp
}

func view(sps ...*state.ServicePort) *state.View {
	v := &state.View{Family: v1.IPv4Protocol, Node: state.Node{Name: "node1", IPs: []netip.Addr{nodeIP}}, Services: map[state.ServicePortName]*state.ServicePort{}}
	for _, sp := range sps {
		v.Services[sp.Name] = sp
	}
	return v
}

func full() *state.Changes { return &state.Changes{Full: true} }

func changed(names ...string) *state.Changes {
	c := &state.Changes{Services: map[state.ServicePortName]struct{}{}}
	for _, n := range names {
		c.Services[spn(n)] = struct{}{}
	}
	return c
}

func mustSync(t *testing.T, p *Proxier, v *state.View, c *state.Changes) {
	t.Helper()
	if _, err := p.Sync(context.Background(), v, c); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// manyServices makes n Services with 5 endpoints each.
func manyServices(n int) []*state.ServicePort { return manyServicesEps(n, 5) }

// manyServicesEps makes n Services with eps endpoints each (one address
// per Service, ports 8000 up).
func manyServicesEps(n, eps int) []*state.ServicePort {
	out := make([]*state.ServicePort, 0, n)
	for i := range n {
		var list []state.Endpoint
		for j := range eps {
			list = append(list, ep(fmt.Sprintf("10.%d.%d.%d", 100+i/65536, (i/256)%256, i%256), false))
			list[j].Port = int32(8000 + j)
		}
		out = append(out, svc(fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.%d.%d", i/256, i%256), list))
	}
	return out
}

func mapSysctl() iptables.FakeSysctl { return iptables.FakeSysctl{} }

func newIPT() *iptables.Fake { return iptables.NewFake() }
