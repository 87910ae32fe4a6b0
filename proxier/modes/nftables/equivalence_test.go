package nftables

import (
	"context"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"
)

// listTable is "nft list table ip kube-proxy" with lines sorted, so the
// order the kernel keeps set elements in does not matter.
func listTable(t *testing.T, ns string) string { return listFamilyTable(t, ns, "ip") }

func listFamilyTable(t *testing.T, ns, family string) string {
	t.Helper()
	lines := strings.Split(nftIn(t, ns, "list", "table", family, "kube-proxy"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.TrimSpace(l), ",")
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// The kernel is written over netlink but the golden files, the fuzz target
// and nft -c see nft text: both come from the same ruleBuilder calls, and
// this test makes sure the kernel lists them identically.
func TestKernelNetlinkMatchesNFTText(t *testing.T) {
	viaNetlink, viaText := scratchNS(t), scratchNS(t)
	ctx := context.Background()
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := kernelProxier(t, viaNetlink)
			if _, err := p.Sync(ctx, tc.view, full()); err != nil {
				t.Fatalf("netlink sync: %v", err)
			}
			ref, fake := newFakeProxier(t, nil)
			if _, err := ref.Sync(ctx, tc.view, full()); err != nil {
				t.Fatal(err)
			}
			nftIn(t, viaText, "-f", writeTemp(t, fake.Dump()))
			if got, want := listTable(t, viaNetlink), listTable(t, viaText); got != want {
				t.Errorf("the kernel lists the netlink table differently from the nft text:\n--- netlink\n%s\n--- nft text\n%s", got, want)
			}
			for _, ns := range []string{viaNetlink, viaText} {
				nftIn(t, ns, "delete", "table", "ip", "kube-proxy")
			}
		})
	}
}

// IPv6 keeps addresses in 16 bytes: the endpoints map's value, the port's
// register after the address and nft's own description of the map all
// differ from IPv4, so the kernel must list both tables the same here too.
func TestKernelIPv6NetlinkMatchesNFTText(t *testing.T) {
	viaNetlink, viaText := scratchNS(t), scratchNS(t)
	ctx := context.Background()
	web := svc("ns1", "web6", "http", "fd00:30::10", 80,
		ep("fd00:1::5", 8080, true), ep("fd00:2::5", 8080, false), ep("fd00:3::5", 8080, false))
	web.NodePort = 30080
	v := view(web)
	v.Family = v1.IPv6Protocol
	v.Node.IPs = []netip.Addr{netip.MustParseAddr("fd00:ff::2")}
	v.Node.PodCIDRs = prefixes("fd00:1::/64")
	v6 := func(o *Options) {
		o.LocalDetect = LocalDetect{Mode: DetectLocalClusterCIDR, ClusterCIDRs: prefixes("fd00::/48")}
	}

	p := kernelProxier(t, viaNetlink)
	v6(&p.opts)
	if _, err := p.Sync(ctx, v, full()); err != nil {
		t.Fatalf("netlink sync: %v", err)
	}
	fake := knftables.NewFake(knftables.IPv6Family, tableName)
	ref, err := New(Options{MasqueradeBit: 14, NFT: fake})
	if err != nil {
		t.Fatal(err)
	}
	v6(&ref.opts)
	if _, err := ref.Sync(ctx, v, full()); err != nil {
		t.Fatal(err)
	}
	nftIn(t, viaText, "-f", writeTemp(t, fake.Dump()))
	got, want := listFamilyTable(t, viaNetlink, "ip6"), listFamilyTable(t, viaText, "ip6")
	if got != want {
		t.Errorf("the kernel lists the netlink table differently from the nft text:\n--- netlink\n%s\n--- nft text\n%s", got, want)
	}
	for _, s := range []string{"dnat ip6 to numgen random mod 65536 map @endpoints-0", ": fd00:2::5 . 8080", "typeof numgen random mod 65536 : ip6 daddr . th dport"} {
		if !strings.Contains(got, s) {
			t.Errorf("the IPv6 table lacks %q:\n%s", s, got)
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "ruleset-*.nft")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
