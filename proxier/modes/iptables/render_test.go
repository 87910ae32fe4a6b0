package iptables

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/proxyproof/proxyproof/proxier/state"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current rendering")

func TestRenderMatchesGolden(t *testing.T) {
	web := spn("ns1", "svc1", "p80")
	ten := func(n int, local int) []state.Endpoint {
		var out []state.Endpoint
		for i := range n {
			out = append(out, ep("10.180.0."+itoa(i+1), 8080, i < local))
		}
		return out
	}
	terminating := ep("10.180.0.9", 80, true)
	terminating.Ready, terminating.Terminating = false, true

	tests := []struct {
		name string
		cfg  func(*renderConfig)
		view *state.View
	}{
		{name: "clusterip", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, []state.Endpoint{ep("10.180.0.1", 80, false)}))},
		{name: "no_endpoints", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, nil, nodePort(30080), externalIPs("192.168.99.11"), loadBalancer([]string{"1.2.3.4"})))},
		{name: "nodeport", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(2, 1), nodePort(30080)))},
		{name: "etp_local", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(3, 1), nodePort(30080), loadBalancer([]string{"1.2.3.4"}), etpLocal(30000)))},
		{name: "etp_local_no_local_endpoints", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(2, 0), nodePort(30080), loadBalancer([]string{"1.2.3.4"}), etpLocal(30000)))},
		{name: "itp_local", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(3, 1), itpLocal()))},
		{name: "itp_local_no_local_endpoints", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(2, 0), itpLocal()))},
		{name: "affinity", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(2, 0), affinity(10800)))},
		{name: "lb_source_ranges", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(2, 0), nodePort(30080),
			loadBalancer([]string{"1.2.3.4", "2001:db8::1"}, "192.168.0.0/24", "203.0.113.0/25", "2001:db8::/64")))},
		{name: "external_ips", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(1, 0), externalIPs("192.168.99.11", "192.168.99.12")))},
		{name: "probabilities", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(5, 0)))},
		{name: "terminating_fallback", view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, []state.Endpoint{terminating}, nodePort(30080), etpLocal(0)))},
		{name: "udp_unnamed_port_masquerade_all", cfg: func(c *renderConfig) { c.masqueradeAll = true },
			view: view(v1.IPv4Protocol, svc(spn("kube-system", "kube-dns", ""), "172.30.0.10", 53, ten(2, 0), protocol(v1.ProtocolUDP)))},
		{name: "nodeport_addresses", cfg: func(c *renderConfig) {
			c.nodePortAll, c.nodePortIPs = false, []netip.Addr{ip("192.168.0.2"), ip("127.0.0.1")}
		}, view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(1, 1), nodePort(30080)))},
		{name: "localhost_nodeports_node_cidr", cfg: func(c *renderConfig) {
			c.localhostNodePorts, c.localDetect = true, LocalDetect{Mode: LocalNodeCIDR}
		}, view: view(v1.IPv4Protocol, svc(web, "172.30.0.41", 80, ten(1, 1), nodePort(30080), etpLocal(0)))},
		{name: "ipv6", cfg: func(c *renderConfig) {
			c.family, c.localDetect, c.conntrackLiberal = v1.IPv6Protocol, LocalDetect{Mode: LocalNodeCIDR}, true
		}, view: view(v1.IPv6Protocol, svc(web, "fd00:30::41", 80, []state.Endpoint{ep("fd00:10:180::1", 80, true), ep("fd00:10:180::2", 80, false)}, nodePort(30080)))},
		// Above the bucket threshold: dispatch through KUBE-SVCB-*; the
		// Service without endpoints is still rejected in filter.
		{name: "bucketed", cfg: func(c *renderConfig) { c.bucketThreshold = 2 }, view: view(v1.IPv4Protocol,
			svc(web, "172.30.0.41", 80, ten(2, 1), nodePort(30080)),
			svc(spn("ns1", "empty", "p80"), "172.30.0.42", 80, nil),
			svc(spn("ns2", "ext", "p443"), "172.30.1.43", 443, ten(1, 0), externalIPs("192.168.99.11"), loadBalancer([]string{"1.2.3.4"})))},
		{name: "bad_services_skipped", view: view(v1.IPv4Protocol,
			svc(spn("ns1", "wrong-family", "p"), "fd00::1", 80, ten(1, 0)),
			svc(spn("ns1", "bad-port", "p"), "172.30.0.42", 0, ten(1, 0)),
			svc(spn("ns1", "odd\" name -j ACCEPT", "p"), "172.30.0.43", 80, ten(1, 0)),
			svc(spn("ns1", "bad-protocol", "p"), "172.30.0.44", 80, ten(1, 0), protocol("ICMP")))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			out := newRenderer(cfg).render(renderInput{view: tc.view, full: true})
			checkGolden(t, filepath.Join("testdata", tc.name+".golden"), out.data)
			// The kernel refuses dangling jumps; so does the fake.
			if err := NewFake().Restore(context.Background(), out.data, RestoreFlags{Counters: true}); err != nil {
				t.Errorf("restore refused the rendering: %v", err)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// checkGolden compares got with the golden file, line by line, or rewrites
// it under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("%s differs (-want +got); run go test -update if the change is intended:\n%s", path, diff)
	}
}
