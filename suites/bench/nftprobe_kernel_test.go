package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// A Service 10.96.0.10:80/tcp as each proxier writes it in table ip
// kube-proxy, from a ClusterIP map entry down to the dnat. The shapes are
// trimmed to what routes traffic; the names are the real ones.
const (
	probeClusterIP = "10.96.0.10"
	probeSvcChain  = "service-ULMVA6XW-ns/svc/tcp/http"
)

// probeTable wraps a Service chain and the chains it leads to in the table
// head both proxiers share: nat hook -> services -> @service-ips -> chain.
func probeTable(chains string) string {
	return `table ip kube-proxy {
	map service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
	chain nat-prerouting { type nat hook prerouting priority -100 ; jump services ; }
	chain nat-output { type nat hook output priority -100 ; jump services ; }
	chain services { ip daddr . meta l4proto . th dport vmap @service-ips ; }
	chain mark-for-masquerade { mark set mark or 0x00004000 ; }
` + chains + `}
add element ip kube-proxy service-ips { ` + probeClusterIP + ` . tcp . 80 : goto ` + probeSvcChain + ` }
`
}

func epChain(ip string) string { return "endpoint-ABCDEFGH-ns/svc/tcp/http__" + ip + "/8080" }

// upstreamShape is kube-proxy's: a numgen vmap to one endpoint chain per
// endpoint, each doing its dnat.
func upstreamShape(ips []string) string {
	var b strings.Builder
	var vmap []string
	for i, ip := range ips {
		fmt.Fprintf(&b, "\tchain %s {\n\t\tip saddr %s jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to %s:8080\n\t}\n", epChain(ip), ip, ip)
		vmap = append(vmap, fmt.Sprintf("%d : goto %s", i, epChain(ip)))
	}
	fmt.Fprintf(&b, "\tchain %s {\n\t\tip daddr %s ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n", probeSvcChain, probeClusterIP)
	fmt.Fprintf(&b, "\t\tnumgen random mod %d vmap { %s }\n\t}\n", len(ips), strings.Join(vmap, ", "))
	return probeTable(b.String())
}

// oursShape is our proxier's: the Service chain dnats itself through a
// cascade of numgen rules, the last one unconditional.
func oursShape(ips []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tchain %s {\n\t\tip daddr %s ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n", probeSvcChain, probeClusterIP)
	for i, ip := range ips {
		cond := ""
		if i < len(ips)-1 {
			cond = fmt.Sprintf("numgen random mod %d == 0 ", len(ips)-i)
		}
		fmt.Fprintf(&b, "\t\t%smeta l4proto tcp dnat to %s:8080\n", cond, ip)
	}
	b.WriteString("\t}\n")
	return probeTable(b.String())
}

// oursAffinityShape is ours with ClientIP affinity: endpoint chains (and
// affinity sets) exist, reached by goto from the affinity matches and the
// cascade.
func oursAffinityShape(ips []string) string {
	var b strings.Builder
	aff := func(ip string) string { return "affinity-ABCDEFGH-ns/svc/tcp/http__" + ip + "/8080" }
	for _, ip := range ips {
		fmt.Fprintf(&b, "\tset %s { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }\n", aff(ip))
		fmt.Fprintf(&b, "\tchain %s {\n\t\tupdate @%s { ip saddr }\n\t\tmeta l4proto tcp dnat to %s:8080\n\t}\n", epChain(ip), aff(ip), ip)
	}
	fmt.Fprintf(&b, "\tchain %s {\n\t\tip daddr %s ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n", probeSvcChain, probeClusterIP)
	for _, ip := range ips {
		fmt.Fprintf(&b, "\t\tip saddr @%s goto %s\n", aff(ip), epChain(ip))
	}
	for i, ip := range ips {
		cond := ""
		if i < len(ips)-1 {
			cond = fmt.Sprintf("numgen random mod %d == 0 ", len(ips)-i)
		}
		fmt.Fprintf(&b, "\t\t%sgoto %s\n", cond, epChain(ip))
	}
	b.WriteString("\t}\n")
	return probeTable(b.String())
}

// probeNamespace makes an empty network namespace (no links) for one test.
func probeNamespace(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads nftables rulesets in a test network namespace")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft tool to load the rulesets")
	}
	ns := fmt.Sprintf("bench-probe-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	return ns
}

// loadRuleset replaces the namespace's ruleset with text, in one nft
// transaction as a proxier's sync is.
func loadRuleset(t *testing.T, ns, text string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("flush ruleset\n" + text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f in %s: %v: %s\nruleset:\n%s", ns, err, out, text)
	}
}

// TestNFTProbeReadsTheSameEndpointsFromEitherShape loads each proxier's
// shape of the same Service in a real kernel and checks the probe the
// bench times changes with finds the Service and exactly its endpoints,
// then follows an endpoint replacement, on one kept connection.
func TestNFTProbeReadsTheSameEndpointsFromEitherShape(t *testing.T) {
	ns := probeNamespace(t)
	before := []string{"172.16.0.1", "172.16.0.2", "172.16.0.3"}
	after := []string{"172.16.0.1", "172.16.0.4", "172.16.0.3"}
	for _, tc := range []struct {
		name  string
		shape func(ips []string) string
	}{
		{name: "upstream's shape: a numgen vmap to endpoint chains that dnat", shape: upstreamShape},
		{name: "our shape: the service chain dnats itself", shape: oursShape},
		{name: "our shape with ClientIP affinity: endpoint chains behind gotos", shape: oursAffinityShape},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			k := &nftKernel{ns: ns}
			defer k.close()
			svc := &service{name: "svc"}
			want := func(ips []string) map[string]bool {
				m := map[string]bool{}
				for _, ip := range ips {
					m[k.token(svc, ip)] = true
				}
				return m
			}

			loadRuleset(t, ns, tc.shape(before))
			svcs, err := k.services(ctx)
			if err != nil {
				t.Fatalf("services: %v", err)
			}
			chain, ok := svcs[probeClusterIP]
			if !ok || chain != probeSvcChain {
				t.Fatalf("services = %v, want %s -> %s", svcs, probeClusterIP, probeSvcChain)
			}
			got, err := k.endpoints(ctx, chain)
			if err != nil {
				t.Fatalf("endpoints: %v", err)
			}
			if !maps.Equal(got, want(before)) {
				t.Errorf("endpoints = %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want(before))))
			}

			loadRuleset(t, ns, tc.shape(after))
			got, err = k.endpoints(ctx, chain)
			if err != nil {
				t.Fatalf("endpoints after the change: %v", err)
			}
			if !maps.Equal(got, want(after)) {
				t.Errorf("endpoints after replacing 172.16.0.2 = %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want(after))))
			}
		})
	}
}

// TestNFTProbeReadsNothingWhereNoChainIs: before the first sync (no table,
// no chain) and for a chain that is gone, the probe reads no endpoints and
// no error, so the bench keeps polling instead of failing the row.
func TestNFTProbeReadsNothingWhereNoChainIs(t *testing.T) {
	ns := probeNamespace(t)
	ctx := context.Background()
	k := &nftKernel{ns: ns}
	defer k.close()
	for _, step := range []struct {
		name    string
		ruleset string
	}{
		{name: "no table yet"},
		{name: "a table without the Service chain", ruleset: "table ip kube-proxy {\n\tchain services { }\n}\n"},
	} {
		if step.ruleset != "" {
			loadRuleset(t, ns, step.ruleset)
		}
		got, err := k.endpoints(ctx, probeSvcChain)
		if err != nil || len(got) != 0 {
			t.Errorf("%s: endpoints = %v, %v; want none and no error", step.name, got, err)
		}
	}
}
