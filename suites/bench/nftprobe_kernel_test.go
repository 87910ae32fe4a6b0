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

// mapShape is our proxier's with a map of endpoints: the Service chain
// dnats through a numgen lookup in its slot of a map Services share (here
// slot 0; the map also holds another Service's slot, which must not count).
func mapShape(ips []string) string {
	var b strings.Builder
	var elems []string
	for i, ip := range ips {
		from := i * 65536 / len(ips)
		to := (i+1)*65536/len(ips) - 1
		elems = append(elems, fmt.Sprintf("%d-%d : %s . 8080", from, to, ip))
	}
	elems = append(elems, "65536-131071 : 172.16.9.9 . 8080")
	fmt.Fprintf(&b, "\tmap endpoints-0 {\n\t\ttypeof numgen random mod 65536 : ip daddr . th dport\n\t\tflags interval\n\t\telements = { %s }\n\t}\n", strings.Join(elems, ", "))
	fmt.Fprintf(&b, "\tchain %s {\n\t\tip daddr %s ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n", probeSvcChain, probeClusterIP)
	b.WriteString("\t\tmeta l4proto tcp dnat ip to numgen random mod 65536 offset 0 map @endpoints-0\n\t}\n")
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
		{name: "our shape with a map of endpoints: the service chain dnats through a numgen lookup", shape: mapShape},
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

// TestNFTProbeReadsEachServiceItsOwnSlotOfASharedEndpointsMap: with our
// map of endpoints, Services share one map and each dnats through its own
// slot of keys; the probe must give each Service exactly the elements of
// its slot (not a neighbour's, even one starting where its slot ends) and
// see an element's value replaced in place, as a sync does.
func TestNFTProbeReadsEachServiceItsOwnSlotOfASharedEndpointsMap(t *testing.T) {
	ns := probeNamespace(t)
	const other = "service-BBBBBBBB-ns/other/tcp/http"
	loadRuleset(t, ns, probeTable(`	map endpoints-0 {
		typeof numgen random mod 65536 : ip daddr . th dport
		flags interval
		elements = { 0-21845 : 10.0.0.1 . 8080, 21846-43690 : 10.0.0.2 . 8080, 43691-65535 : 10.0.0.3 . 8080,
			     65536-98303 : 10.2.0.1 . 80,
			     131072-163839 : 10.1.0.1 . 80, 163840-196607 : 10.1.0.2 . 80 }
	}
	chain `+probeSvcChain+` {
		ip daddr `+probeClusterIP+` ip saddr != 10.0.0.0/8 jump mark-for-masquerade
		meta l4proto tcp dnat ip to numgen random mod 65536 offset 0 map @endpoints-0
	}
	chain `+other+` {
		meta l4proto tcp dnat ip to numgen random mod 65536 offset 131072 map @endpoints-0
	}
`)+"add element ip kube-proxy service-ips { 10.96.0.11 . tcp . 80 : goto "+other+" }\n")

	ctx := context.Background()
	k := &nftKernel{ns: ns}
	defer k.close()
	svcs, err := k.services(ctx)
	if err != nil {
		t.Fatalf("services: %v", err)
	}
	if svcs[probeClusterIP] != probeSvcChain || svcs["10.96.0.11"] != other {
		t.Fatalf("services = %v, want %s -> %s and 10.96.0.11 -> %s", svcs, probeClusterIP, probeSvcChain, other)
	}
	check := func(when, chain string, want ...string) {
		t.Helper()
		got, err := k.endpoints(ctx, chain)
		if err != nil {
			t.Fatalf("%s: endpoints of %s: %v", when, chain, err)
		}
		if !maps.Equal(got, setOf(want)) {
			t.Errorf("%s: endpoints of %s = %v, want %v", when, chain, slices.Sorted(maps.Keys(got)), want)
		}
	}
	check("as loaded", probeSvcChain, "10.0.0.1/8080", "10.0.0.2/8080", "10.0.0.3/8080")
	check("as loaded", other, "10.1.0.1/80", "10.1.0.2/80")

	nft(t, ns, "delete", "element", "ip", "kube-proxy", "endpoints-0", "{ 21846-43690 }")
	check("with an element deleted", probeSvcChain, "10.0.0.1/8080", "10.0.0.3/8080")
	nft(t, ns, "add", "element", "ip", "kube-proxy", "endpoints-0", "{ 21846-43690 : 10.0.0.9 . 8080 }")
	check("with the element's value replaced", probeSvcChain, "10.0.0.1/8080", "10.0.0.9/8080", "10.0.0.3/8080")
	check("with the other Service's element replaced", other, "10.1.0.1/80", "10.1.0.2/80")
}

func setOf(items []string) map[string]bool {
	m := map[string]bool{}
	for _, it := range items {
		m[it] = true
	}
	return m
}

// nft runs one nft command in the namespace, as a sync's incremental
// change would land.
func nft(t *testing.T, ns string, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s in %s: %v: %s", strings.Join(args, " "), ns, err, out)
	}
}
