package ipvs

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

func TestSyncProgramsVirtualServers(t *testing.T) {
	a, b, d := ep("10.244.1.10", true), ep("10.244.1.11", true), ep("10.244.2.10", false)
	cases := []struct {
		name  string
		opts  func(*Options)
		sp    *state.ServicePort
		want  []string
		sets  map[string][]string
		bound []string
	}{
		{"a ClusterIP gets one round-robin virtual server with every endpoint at weight 1", nil,
			svc("web", "10.96.0.10", []state.Endpoint{a, d}),
			[]string{"tcp 10.96.0.10:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1 10.244.2.10:8080/1"},
			map[string][]string{setClusterIP: {"10.96.0.10,tcp:80"}, setLoopBack: {"10.244.1.10,tcp:8080,10.244.1.10"}},
			[]string{"10.96.0.10"}},
		{"a NodePort listens on the node address but not on loopback", nil,
			svc("np", "10.96.0.13", []state.Endpoint{d}, func(s *state.ServicePort) { s.NodePort = 30013 }),
			[]string{"tcp 10.96.0.13:80 rr flags=0x0 timeout=0 -> 10.244.2.10:8080/1", "tcp 192.0.2.1:30013 rr flags=0x0 timeout=0 -> 10.244.2.10:8080/1"},
			map[string][]string{setNodePortTCP: {"30013"}, setNodePortLocalTCP: nil},
			[]string{"10.96.0.13"}},
		{"an externalIP gets its own virtual server and address", nil,
			svc("ext", "10.96.0.22", []state.Endpoint{a}, func(s *state.ServicePort) { s.ExternalIPs = []netip.Addr{netip.MustParseAddr("203.0.113.22")} }),
			[]string{"tcp 10.96.0.22:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1", "tcp 203.0.113.22:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1"},
			map[string][]string{setExternalIP: {"203.0.113.22,tcp:80"}},
			[]string{"10.96.0.22", "203.0.113.22"}},
		{"an externalIP that is a node address is not bound again", nil,
			svc("ext-node", "10.96.0.24", []state.Endpoint{a}, func(s *state.ServicePort) { s.ExternalIPs = []netip.Addr{nodeIP} }),
			[]string{"tcp 10.96.0.24:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1", "tcp 192.0.2.1:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1"},
			nil, []string{"10.96.0.24"}},
		{"a LoadBalancer with source ranges fills the firewall sets", nil,
			svc("lb", "10.96.0.23", []state.Endpoint{a}, func(s *state.ServicePort) {
				s.LoadBalancerIPs = []netip.Addr{netip.MustParseAddr("203.0.113.23")}
				s.LoadBalancerSourceRanges = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
			}),
			[]string{"tcp 10.96.0.23:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1", "tcp 203.0.113.23:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1"},
			map[string][]string{
				setLoadBalancer: {"203.0.113.23,tcp:80"}, setLoadBalancerFW: {"203.0.113.23,tcp:80"},
				setLBSourceCIDR: {"203.0.113.23,tcp:80,192.0.2.0/24"},
				// The range holds the node's IP: the node may reach its LB IP.
				setLBSourceIP: {"203.0.113.23,tcp:80,203.0.113.23"},
			},
			[]string{"10.96.0.23", "203.0.113.23"}},
		{"externalTrafficPolicy Local sends external traffic to local endpoints only, ClusterIP to all", nil,
			svc("etp", "10.96.0.17", []state.Endpoint{a, d}, func(s *state.ServicePort) {
				s.NodePort, s.ExternalPolicyLocal, s.HealthCheckNodePort = 30017, true, 32017
			}),
			[]string{"tcp 10.96.0.17:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1 10.244.2.10:8080/1", "tcp 192.0.2.1:30017 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1"},
			map[string][]string{setNodePortTCP: {"30017"}, setNodePortLocalTCP: {"30017"}, setHealthCheckNodePort: {"32017"}},
			nil},
		{"internalTrafficPolicy Local sends ClusterIP traffic to local endpoints only", nil,
			svc("itp", "10.96.0.20", []state.Endpoint{b, d}, func(s *state.ServicePort) { s.InternalPolicyLocal = true }),
			[]string{"tcp 10.96.0.20:80 rr flags=0x0 timeout=0 -> 10.244.1.11:8080/1"}, nil, nil},
		{"ClientIP affinity becomes persistence with the sticky timeout", nil,
			svc("sticky", "10.96.0.19", []state.Endpoint{a}, func(s *state.ServicePort) { s.SessionAffinity, s.StickySeconds = true, 600 }),
			[]string{"tcp 10.96.0.19:80 rr flags=0x1 timeout=600 -> 10.244.1.10:8080/1"}, nil, nil},
		{"the configured scheduler is used", func(o *Options) { o.Scheduler = "lc" },
			svc("lc", "10.96.0.30", []state.Endpoint{a}),
			[]string{"tcp 10.96.0.30:80 lc flags=0x0 timeout=0 -> 10.244.1.10:8080/1"}, nil, nil},
		{"mh sets the source-hash-port flag as upstream, and the fallback past a draining real server", func(o *Options) { o.Scheduler = "mh" },
			svc("mh", "10.96.0.31", []state.Endpoint{a}),
			[]string{"tcp 10.96.0.31:80 mh flags=0x18 timeout=0 -> 10.244.1.10:8080/1"}, nil, nil},
		{"a Service's own scheduler (the annotation) overrides the default; sh falls back past a draining real server", nil,
			withScheduler(svc("sh", "10.96.0.32", []state.Endpoint{a}), "sh"),
			[]string{"tcp 10.96.0.32:80 sh flags=0x8 timeout=0 -> 10.244.1.10:8080/1"}, nil, nil},
		{"a Service without endpoints keeps an empty virtual server, which the kernel refuses", nil,
			svc("empty", "10.96.0.14", nil),
			[]string{"tcp 10.96.0.14:80 rr flags=0x0 timeout=0 ->"}, nil, []string{"10.96.0.14"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, k := newTestProxier(t, c.opts)
			mustSync(t, p, view(c.sp), full())
			if diff := cmp.Diff(c.want, k.ipvs.Dump()); diff != "" {
				t.Errorf("virtual servers (-want +got):\n%s", diff)
			}
			for set, want := range c.sets {
				if diff := cmp.Diff(want, k.ipset.Members(set)); diff != "" {
					t.Errorf("ipset %s (-want +got):\n%s", set, diff)
				}
			}
			if c.bound != nil {
				if diff := cmp.Diff(c.bound, k.links.Bound()); diff != "" {
					t.Errorf("addresses on %s (-want +got):\n%s", dummyDevice, diff)
				}
				if diff := cmp.Diff(c.bound, k.ipset.Members(setIPVSIPs)); diff != "" {
					t.Errorf("ipset %s (-want +got):\n%s", setIPVSIPs, diff)
				}
			}
		})
	}
}

func TestPartialSyncTouchesOnlyTheChangedService(t *testing.T) {
	p, k := newTestProxier(t, nil)
	sps := manyServices(50)
	mustSync(t, p, view(sps...), full())
	restores := len(k.ipt.Restores)
	k.ipvs.ResetCalls()
	k.ipset.Calls = map[string]int{}
	k.links.Calls = map[string]int{}

	// s7 loses one endpoint and gains another.
	eps := append([]state.Endpoint{}, sps[7].ClusterEndpoints[1:]...)
	eps = append(eps, ep("10.250.0.1", false))
	sps[7] = svc("s7", "10.96.0.7", eps)
	mustSync(t, p, view(sps...), changed("s7"))

	want := map[string]int{"NewDestination": 1, "GetDestinations": 1, "DelDestination": 1}
	if diff := cmp.Diff(want, k.ipvs.Calls); diff != "" {
		t.Errorf("IPVS calls of a one-endpoint change (-want +got):\n%s", diff)
	}
	if n := len(k.ipset.Calls) + len(k.links.Calls); n != 0 {
		t.Errorf("ipset and link calls %v %v, want none", k.ipset.Calls, k.links.Calls)
	}
	if len(k.ipt.Restores) != restores {
		t.Errorf("a partial sync ran iptables-restore")
	}

	// Removing the Service removes its virtual server, address and entries.
	k.ipvs.ResetCalls()
	rest := slices.Delete(slices.Clone(sps), 7, 8)
	mustSync(t, p, view(rest...), changed("s7"))
	if diff := cmp.Diff(map[string]int{"DelService": 1}, k.ipvs.Calls); diff != "" {
		t.Errorf("IPVS calls of a removal (-want +got):\n%s", diff)
	}
	if slices.Contains(k.links.Bound(), "10.96.0.7") || slices.Contains(k.ipset.Members(setClusterIP), "10.96.0.7,tcp:80") {
		t.Errorf("address or ClusterIP entry of the removed Service still there")
	}
	if got := len(k.ipvs.Dump()); got != 49 {
		t.Errorf("%d virtual servers, want 49", got)
	}
}

func TestRemovedRealServerDrainsThenGoes(t *testing.T) {
	a, b := ep("10.244.1.10", true), ep("10.244.1.11", true)
	vip := netip.MustParseAddrPort("10.96.0.15:80")
	bAddr := netip.MustParseAddrPort("10.244.1.11:8080")
	cases := []struct {
		name      string
		conns     int
		advance   time.Duration
		wantAfter string
	}{
		{"a real server without connections is deleted at once", 0, 0, "tcp 10.96.0.15:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1"},
		{"a real server with connections stays at weight 0 until they drain", 3, 0, "tcp 10.96.0.15:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1 10.244.1.11:8080/0"},
		{"a draining real server is deleted after the timeout", 3, 16 * time.Minute, "tcp 10.96.0.15:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, k := newTestProxier(t, nil)
			mustSync(t, p, view(svc("removed", "10.96.0.15", []state.Endpoint{a, b})), full())
			if err := k.ipvs.SetConnections(vip, 6, bAddr, c.conns, 0); err != nil {
				t.Fatal(err)
			}
			v := view(svc("removed", "10.96.0.15", []state.Endpoint{a}))
			mustSync(t, p, v, changed("removed"))
			*k.clock = k.clock.Add(c.advance)
			mustSync(t, p, v, changed())
			if diff := cmp.Diff([]string{c.wantAfter}, k.ipvs.Dump()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if c.conns > 0 && c.advance == 0 {
				// The connections close: the next sync deletes it.
				_ = k.ipvs.SetConnections(vip, 6, bAddr, 0, 0)
				mustSync(t, p, v, full())
				if got := k.ipvs.Dump()[0]; strings.Contains(got, "10.244.1.11") {
					t.Errorf("drained real server still there: %s", got)
				}
			}
		})
	}
	t.Run("a draining real server that comes back gets its weight again", func(t *testing.T) {
		p, k := newTestProxier(t, nil)
		mustSync(t, p, view(svc("back", "10.96.0.15", []state.Endpoint{a, b})), full())
		_ = k.ipvs.SetConnections(vip, 6, bAddr, 1, 0)
		mustSync(t, p, view(svc("back", "10.96.0.15", []state.Endpoint{a})), changed("back"))
		mustSync(t, p, view(svc("back", "10.96.0.15", []state.Endpoint{a, b})), changed("back"))
		want := "tcp 10.96.0.15:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1 10.244.1.11:8080/1"
		if diff := cmp.Diff([]string{want}, k.ipvs.Dump()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("a UDP real server is deleted at once even with connections", func(t *testing.T) {
		p, k := newTestProxier(t, nil)
		udp := func(s *state.ServicePort) { s.Protocol, s.Name.Protocol = v1.ProtocolUDP, v1.ProtocolUDP }
		s1 := svc("udp", "10.96.0.16", []state.Endpoint{a, b}, udp)
		mustSync(t, p, view(s1), full())
		_ = k.ipvs.SetConnections(vip, 17, bAddr, 0, 5)
		s2 := svc("udp", "10.96.0.16", []state.Endpoint{a}, udp)
		c := &state.Changes{Services: map[state.ServicePortName]struct{}{s2.Name: {}}}
		mustSync(t, p, view(s2), c)
		want := "udp 10.96.0.16:80 rr flags=0x0 timeout=0 -> 10.244.1.10:8080/1"
		if diff := cmp.Diff([]string{want}, k.ipvs.Dump()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestFullSyncRepairsDrift(t *testing.T) {
	p, k := newTestProxier(t, nil)
	sps := manyServices(5)
	v := view(sps...)
	mustSync(t, p, v, full())
	wantIPVS, wantBound, wantCluster := k.ipvs.Dump(), k.links.Bound(), k.ipset.Members(setClusterIP)

	// Someone else meddles: a stray virtual server, one of ours deleted,
	// a real server removed, an address and an entry gone, a stray entry.
	k.ipvs.AddForeign(6, netip.MustParseAddrPort("10.96.9.9:80"), "rr")
	_ = k.ipvs.DelService(ipvsService(vsKey{netip.MustParseAddr("10.96.0.1"), 80, 6}))
	_ = k.ipvs.DelDestination(ipvsService(vsKey{netip.MustParseAddr("10.96.0.2"), 80, 6}), ipvsDest(netip.MustParseAddrPort("10.100.0.2:8001"), 1))
	_ = k.links.DelAddr(dummyDevice, netip.MustParseAddr("10.96.0.3"))
	_ = k.ipset.Del(setClusterIP, Entry{IP: netip.MustParseAddr("10.96.0.4"), Protocol: 6, Port: 80})
	_ = k.ipset.Add(setClusterIP, Entry{IP: netip.MustParseAddr("10.96.8.8"), Protocol: 6, Port: 80})

	// A partial sync trusts its record and repairs nothing...
	mustSync(t, p, v, changed())
	if cmp.Equal(wantIPVS, k.ipvs.Dump()) {
		t.Fatalf("the drift did not happen")
	}
	// ...a full one repairs everything.
	mustSync(t, p, v, full())
	if diff := cmp.Diff(wantIPVS, k.ipvs.Dump()); diff != "" {
		t.Errorf("virtual servers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantBound, k.links.Bound()); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantCluster, k.ipset.Members(setClusterIP)); diff != "" {
		t.Errorf("ClusterIP set (-want +got):\n%s", diff)
	}
}

func TestFullSyncKeepsExcludedVirtualServers(t *testing.T) {
	p, k := newTestProxier(t, func(o *Options) { o.ExcludeCIDRs = []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")} })
	k.ipvs.AddForeign(6, netip.MustParseAddrPort("172.16.0.1:443"), "wlc")
	k.ipvs.AddForeign(6, netip.MustParseAddrPort("10.96.9.9:80"), "rr")
	mustSync(t, p, view(), full())
	want := []string{"tcp 172.16.0.1:443 wlc flags=0x0 timeout=0 ->"}
	if diff := cmp.Diff(want, k.ipvs.Dump()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestIPTablesRulesStayTheSameAsServicesGrow(t *testing.T) {
	var inputs [][]byte
	var counts []map[string]int
	for _, n := range []int{0, 1, 100, 1000} {
		p, k := newTestProxier(t, nil)
		res, err := p.Sync(context.Background(), view(manyServices(n)...), full())
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, k.ipt.Restores[len(k.ipt.Restores)-1])
		counts = append(counts, map[string]int{"nat": res.Rules["nat"], "filter": res.Rules["filter"]})
	}
	for i := 1; i < len(inputs); i++ {
		if !bytes.Equal(inputs[0], inputs[i]) {
			t.Errorf("iptables-restore input differs with the number of Services:\n%s\n---\n%s", inputs[0], inputs[i])
		}
		if !cmp.Equal(counts[0], counts[i]) {
			t.Errorf("rule counts %v vs %v", counts[0], counts[i])
		}
	}
	if counts[0]["nat"] < 20 || counts[0]["filter"] < 10 {
		t.Errorf("suspiciously few rules: %v", counts[0])
	}
	for _, want := range []string{
		"-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
		"-A KUBE-POSTROUTING -m comment --comment \"Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose\" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE",
		"-A KUBE-NODE-PORT -p tcp -m comment --comment \"Kubernetes nodeport TCP port for masquerade purpose\" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ",
		"-A KUBE-SOURCE-RANGES-FIREWALL -j DROP",
		"-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000",
	} {
		if !bytes.Contains(inputs[0], []byte(want+"\n")) {
			t.Errorf("rules lack %q:\n%s", want, inputs[0])
		}
	}
}

func TestCleanupRemovesEverythingAndIsSafeTwice(t *testing.T) {
	p, k := newTestProxier(t, nil)
	mustSync(t, p, view(manyServices(3)...), full())
	for i := range 2 {
		if err := p.Cleanup(context.Background()); err != nil {
			t.Fatalf("cleanup %d: %v", i+1, err)
		}
		if d := k.ipvs.Dump(); len(d) != 0 {
			t.Errorf("virtual servers left: %v", d)
		}
		if len(k.links.Dummy) != 0 || len(k.ipset.Sets) != 0 {
			t.Errorf("left: interfaces %v, sets %v", k.links.Dummy, k.ipset.Types)
		}
		for _, tb := range []string{"nat", "filter"} {
			for _, c := range k.ipt.Chains(tb) {
				if strings.HasPrefix(c, "KUBE-") {
					t.Errorf("chain %s left in %s", c, tb)
				}
			}
			save, _ := k.ipt.Save(context.Background(), tb)
			if bytes.Contains(save, []byte("KUBE-")) {
				t.Errorf("jump left in %s:\n%s", tb, save)
			}
		}
	}
	// And the next sync rebuilds it all.
	mustSync(t, p, view(manyServices(3)...), changed())
	if len(k.ipvs.Dump()) != 3 {
		t.Errorf("sync after cleanup: %v", k.ipvs.Dump())
	}
}

func TestPreflightNamesTheMissingModule(t *testing.T) {
	t.Run("a scheduler the kernel lacks is named with the modprobe command", func(t *testing.T) {
		f := NewFake()
		f.Schedulers = []string{"rr"}
		_, err := New(context.Background(), Options{Scheduler: "sh", IPVS: f, IPSet: NewFakeIPSet(), Links: NewFakeLinks(), Sysctl: mapSysctl()})
		var ke *KernelError
		if !errors.As(err, &ke) || ke.Module != "ip_vs_sh" || !strings.Contains(err.Error(), "modprobe ip_vs ip_vs_sh") {
			t.Fatalf("err = %v, want a KernelError for ip_vs_sh", err)
		}
	})
	t.Run("this host kernel without ip_vs stops New with the module to load", func(t *testing.T) {
		if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
			t.Skip("this kernel has ip_vs loaded")
		}
		_, err := New(context.Background(), Options{Sysctl: mapSysctl()})
		var ke *KernelError
		if !errors.As(err, &ke) || ke.Module != "ip_vs" {
			t.Fatalf("err = %v, want a KernelError for ip_vs", err)
		}
		for _, want := range []string{"ip_vs", "modprobe ip_vs ip_vs_rr", "does not fall back to iptables"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
	t.Run("without preflight New succeeds and Cleanup skips IPVS", func(t *testing.T) {
		if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
			t.Skip("this kernel has ip_vs loaded")
		}
		p, err := New(context.Background(), Options{NoPreflight: true, IPSet: NewFakeIPSet(), Links: NewFakeLinks(), Runner: newIPT()})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Cleanup(context.Background()); err != nil {
			t.Fatalf("cleanup on a kernel without ip_vs: %v", err)
		}
	})
}

func withScheduler(sp *state.ServicePort, s string) *state.ServicePort {
	sp.Scheduler = s
	return sp
}
