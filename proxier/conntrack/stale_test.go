package conntrack

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vishvananda/netlink"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// flow builds a flow client -> orig (DNATed to) reply.
func flow(proto uint8, client, orig, reply string) *netlink.ConntrackFlow {
	c, o, r := netip.MustParseAddrPort(client), netip.MustParseAddrPort(orig), netip.MustParseAddrPort(reply)
	return &netlink.ConntrackFlow{
		FamilyType: unix.AF_INET,
		Forward: netlink.IPTuple{Protocol: proto, SrcIP: net.IP(c.Addr().AsSlice()), SrcPort: c.Port(),
			DstIP: net.IP(o.Addr().AsSlice()), DstPort: o.Port()},
		Reverse: netlink.IPTuple{Protocol: proto, SrcIP: net.IP(r.Addr().AsSlice()), SrcPort: r.Port(),
			DstIP: net.IP(c.Addr().AsSlice()), DstPort: c.Port()},
	}
}

func endpoint(ipPort string, ready, serving bool) state.Endpoint {
	ap := netip.MustParseAddrPort(ipPort)
	return state.Endpoint{IP: ap.Addr(), Port: int32(ap.Port()), Ready: ready, Serving: serving}
}

// dnsView is one UDP Service ns/dns, ClusterIP 10.96.0.10:53, externalIP
// 203.0.113.1, LB IP 198.51.100.1, NodePort 30053, with eps.
func dnsView(proto v1.Protocol, eps ...state.Endpoint) *state.View {
	sp := &state.ServicePort{
		Name:             state.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "dns"}, Port: "dns", Protocol: proto},
		Protocol:         proto,
		ClusterIP:        netip.MustParseAddr("10.96.0.10"),
		Port:             53,
		NodePort:         30053,
		ExternalIPs:      []netip.Addr{netip.MustParseAddr("203.0.113.1")},
		LoadBalancerIPs:  []netip.Addr{netip.MustParseAddr("198.51.100.1")},
		AllEndpoints:     eps,
		ClusterEndpoints: eps,
		HasEndpoints:     len(eps) > 0,
	}
	return &state.View{Family: v1.IPv4Protocol, Services: map[state.ServicePortName]*state.ServicePort{sp.Name: sp}}
}

func TestWhichFlowsAreStale(t *testing.T) {
	const udp, tcp = unix.IPPROTO_UDP, unix.IPPROTO_TCP
	live := endpoint("10.244.1.8:5353", true, true)
	tests := []struct {
		name  string
		view  *state.View
		flow  *netlink.ConntrackFlow
		stale bool
	}{
		{"a flow to the ClusterIP on a current endpoint stays",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.8:5353"), false},
		{"a flow to the ClusterIP on a gone endpoint is stale",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353"), true},
		{"a flow to the right endpoint IP but an old target port is stale",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.8:53"), true},
		{"a flow never DNATed while the Service now has endpoints is stale",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.96.0.10:53"), true},
		{"a flow to an externalIP on a gone endpoint is stale",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "203.0.113.1:53", "10.244.1.7:5353"), true},
		{"a flow to a LoadBalancer IP on a gone endpoint is stale",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "198.51.100.1:53", "10.244.1.7:5353"), true},
		{"a flow to the NodePort on any node address with a gone endpoint is stale",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "192.0.2.10:30053", "10.244.1.7:5353"), true},
		{"a flow to the NodePort on a current endpoint stays",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "192.0.2.10:30053", "10.244.1.8:5353"), false},
		{"a flow to the ClusterIP on another port is not ours",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "10.96.0.10:54", "10.244.1.7:5353"), false},
		{"a flow to another IP is not ours",
			dnsView(v1.ProtocolUDP, live), flow(udp, "10.1.0.5:40000", "10.96.0.11:53", "10.244.1.7:5353"), false},
		{"a TCP flow is left to TCP",
			dnsView(v1.ProtocolUDP, live), flow(tcp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353"), false},
		{"a TCP Service is not reconciled",
			dnsView(v1.ProtocolTCP, live), flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353"), false},
		{"a Service without endpoints keeps its flows",
			dnsView(v1.ProtocolUDP), flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.96.0.10:53"), false},
		{"a serving terminating endpoint keeps its flows",
			dnsView(v1.ProtocolUDP, endpoint("10.244.1.7:5353", false, true), live),
			flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353"), false},
		{"a not serving endpoint loses its flows",
			dnsView(v1.ProtocolUDP, endpoint("10.244.1.7:5353", false, false), live),
			flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filters := staleFilters(tt.view, []*netlink.ConntrackFlow{tt.flow})
			if stale := len(filters) > 0; stale != tt.stale {
				t.Fatalf("stale = %v (%d filters), want %v for %s", stale, len(filters), tt.stale, tt.flow)
			}
			for _, f := range filters {
				if !f.MatchConntrackFlow(tt.flow) {
					t.Errorf("filter %+v does not match the flow it was made for", f)
				}
			}
		})
	}
}

func TestFiltersDeleteOnlyTheStaleFlow(t *testing.T) {
	const udp = unix.IPPROTO_UDP
	view := dnsView(v1.ProtocolUDP, endpoint("10.244.1.8:5353", true, true))
	stale := flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353")
	others := []*netlink.ConntrackFlow{
		flow(udp, "10.1.0.6:40000", "10.96.0.10:53", "10.244.1.8:5353"),
		flow(udp, "10.1.0.6:40000", "10.96.0.11:53", "10.244.1.7:5353"),
		flow(unix.IPPROTO_TCP, "10.1.0.6:40000", "10.96.0.10:53", "10.244.1.7:5353"),
	}
	filters := staleFilters(view, append([]*netlink.ConntrackFlow{stale, stale}, others...))
	if len(filters) != 1 {
		t.Fatalf("got %d filters for one stale flow seen twice, want 1", len(filters))
	}
	for _, o := range others {
		if filters[0].MatchConntrackFlow(o) {
			t.Errorf("filter for the stale flow also matches %s", o)
		}
	}
}

type fakeTable struct {
	flows   []*netlink.ConntrackFlow
	listErr error
}

func (f *fakeTable) List(netlink.InetFamily) ([]*netlink.ConntrackFlow, error) {
	return f.flows, f.listErr
}

func (f *fakeTable) Delete(_ netlink.InetFamily, filters ...netlink.CustomConntrackFilter) (int, error) {
	var kept []*netlink.ConntrackFlow
	n := 0
	for _, fl := range f.flows {
		match := false
		for _, flt := range filters {
			match = match || flt.MatchConntrackFlow(fl)
		}
		if match {
			n++
		} else {
			kept = append(kept, fl)
		}
	}
	f.flows = kept
	return n, nil
}

func TestCleanCountsDeletionsAndToleratesAnInterruptedDump(t *testing.T) {
	const udp = unix.IPPROTO_UDP
	tests := []struct {
		name        string
		listErr     error
		wantDeleted int
		wantErr     bool
	}{
		{"a complete dump is cleaned", nil, 2, false},
		{"an interrupted dump is cleaned with what it gave", netlink.ErrDumpInterrupted, 2, false},
		{"a failed dump is an error and deletes nothing", errors.New("permission denied"), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &fakeTable{listErr: tt.listErr, flows: []*netlink.ConntrackFlow{
				flow(udp, "10.1.0.5:40000", "10.96.0.10:53", "10.244.1.7:5353"),
				flow(udp, "10.1.0.6:40000", "10.96.0.10:53", "10.96.0.10:53"),
				flow(udp, "10.1.0.7:40000", "10.96.0.10:53", "10.244.1.8:5353"),
			}}
			if tt.wantErr {
				ft.flows = nil
			}
			c := &Cleaner{open: func() (table, func(), error) { return ft, func() {}, nil }}
			n, err := c.Clean(dnsView(v1.ProtocolUDP, endpoint("10.244.1.8:5353", true, true)))
			if (err != nil) != tt.wantErr || n != tt.wantDeleted {
				t.Fatalf("Clean = %d, %v; want %d, error %v", n, err, tt.wantDeleted, tt.wantErr)
			}
		})
	}
}
