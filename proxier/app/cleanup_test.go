package app

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/proxier/netns/netnstest"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/proxyproof/proxyproof/proxier/config"
	"github.com/proxyproof/proxyproof/proxier/netns"
	"github.com/proxyproof/proxyproof/proxier/state"
)

func scratchNS(t *testing.T) string {
	t.Helper()
	return netnstest.New(t, "app", "iptables-save", "nft")
}

// kernelState is everything a proxier could leave in a namespace.
func kernelState(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, c := range [][]string{{"iptables-save"}, {"nft", "list", "ruleset"}} {
		out, err := netns.Cmd(ns, c[0], c[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s in %s: %v: %s", c[0], ns, err, out)
		}
		b.Write(out)
	}
	return b.String()
}

func oneService() *state.View {
	name := state.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "default", Name: "web"}, Port: "http", Protocol: v1.ProtocolTCP}
	ep := state.Endpoint{IP: netip.MustParseAddr("10.244.1.5"), Port: 8080, Ready: true, Serving: true}
	return &state.View{
		Family: v1.IPv4Protocol,
		Node:   state.Node{Name: "node1", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		Services: map[state.ServicePortName]*state.ServicePort{name: {
			Name: name, Protocol: v1.ProtocolTCP, ClusterIP: netip.MustParseAddr("10.96.0.10"), Port: 80, NodePort: 30080,
			ClusterEndpoints: []state.Endpoint{ep}, AllEndpoints: []state.Endpoint{ep}, HasEndpoints: true,
		}},
	}
}

func TestKernelCleanupRemovesEveryModesRulesAndIsSafeTwice(t *testing.T) {
	for _, mode := range []string{config.ModeIPTables, config.ModeNFTables} {
		t.Run(mode, func(t *testing.T) {
			ns := scratchNS(t)
			cfg := &config.Config{Mode: mode, NetNS: ns, MasqueradeBit: 14, DetectLocalMode: config.LocalModeClusterCIDR,
				ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
			ctx := context.Background()
			m, err := NewMode(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Sync(ctx, oneService(), &state.Changes{Full: true}); err != nil {
				t.Fatal(err)
			}
			before := kernelState(t, ns)
			if !strings.Contains(before, "10.96.0.10") {
				t.Fatalf("the %s mode did not program the service; kernel holds:\n%s", mode, before)
			}
			for i := 1; i <= 2; i++ {
				if err := Cleanup(ctx, cfg); err != nil {
					t.Fatalf("cleanup #%d: %v", i, err)
				}
			}
			after := kernelState(t, ns)
			for _, mark := range []string{"KUBE-", "kube-proxy", "10.96.0.10"} {
				if strings.Contains(after, mark) {
					t.Errorf("after cleanup the kernel still holds %q:\n%s", mark, after)
				}
			}
		})
	}
}

func TestAModeThatIsNotBuiltIsRefusedWithTheReason(t *testing.T) {
	_, err := NewMode(context.Background(), &config.Config{Mode: "userspace", DetectLocalMode: config.LocalModeNodeCIDR})
	if err == nil || !strings.Contains(err.Error(), "userspace") {
		t.Fatalf("err = %v, want the unknown mode named", err)
	}
	_, err = NewMode(context.Background(), &config.Config{Mode: config.ModeIPTables, DetectLocalMode: "BridgeInterface"})
	if err == nil || !strings.Contains(err.Error(), "BridgeInterface") {
		t.Fatalf("err = %v, want the unsupported detectLocalMode named", err)
	}
}
