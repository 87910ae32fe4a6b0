package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

// viewFromBytes decodes fuzz input into a View: each 12-byte record is one
// ServicePort whose bits pick protocol, policies, affinity, IPs, endpoints.
func viewFromBytes(data []byte) *state.View {
	v := view()
	protos := []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP, "ICMP"}
	for i := 0; i+12 <= len(data) && i < 12*40; i += 12 {
		b := data[i : i+12]
		flags := b[0]
		sp := svc("ns", fmt.Sprintf("s%d", b[1]%8), fmt.Sprintf("p%d", b[2]%3),
			netip.AddrFrom4([4]byte{172, 30, b[3] % 4, b[1]}).String(), int32(b[4])<<8|int32(b[5]))
		sp.Protocol = protos[b[6]%4]
		sp.Name.Protocol = sp.Protocol
		if flags&1 != 0 {
			sp.NodePort = 30000 + int32(b[7])
		}
		sp.ExternalPolicyLocal = flags&2 != 0
		sp.InternalPolicyLocal = flags&4 != 0
		if flags&8 != 0 {
			sp.SessionAffinity, sp.StickySeconds = true, int32(b[8])
		}
		if flags&16 != 0 {
			sp.ExternalIPs = []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, b[9]})}
		}
		if flags&32 != 0 {
			sp.LoadBalancerIPs = []netip.Addr{netip.AddrFrom4([4]byte{203, 0, 113, b[9]})}
			sp.LoadBalancerSourceRanges = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{b[10], b[11], 0, 0}), int(b[10]%33))}
		}
		if flags&64 != 0 {
			sp.ClusterIP = netip.MustParseAddr("fd00::1")
		}
		var eps []state.Endpoint
		for j := 0; j < int(b[11]%6); j++ {
			eps = append(eps, ep(netip.AddrFrom4([4]byte{10, 0, byte(j), b[1]}).String(), int32(b[5])+int32(j), (b[10]>>j)&1 == 1))
		}
		setEndpoints(sp, eps...)
		if flags&128 != 0 {
			sp.HasEndpoints = !sp.HasEndpoints
		}
		v.Services[sp.Name] = sp
	}
	return v
}

// FuzzRender: any View renders without error or panic into a ruleset the
// Fake accepts and, as root, the kernel accepts (nft -c -f in a scratch
// namespace).
func FuzzRender(f *testing.F) {
	f.Add([]byte("\x01\x02\x00\x00\x00\x50\x00\x10\x00\x00\x00\x03"))
	f.Add([]byte("\x3f\x05\x01\x01\x01\xbb\x01\x22\x10\x07\x18\x05\x0e\x06\x02\x02\x00\x35\x01\x00\x3c\x00\x00\x02"))
	f.Add([]byte("\xff\x07\x02\x03\x00\x00\x03\x01\x00\x00\x00\x00"))
	var ns string
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("nft"); err == nil {
			ns = scratchNS(f)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := viewFromBytes(data)
		p, fake := newFakeProxier(t, nil)
		if _, err := p.Sync(context.Background(), v, full()); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if ns != "" {
			checkInKernel(t, ns, fake.Dump())
		}
	})
}
