package nftables

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
)

// listTable is "nft list table ip kube-proxy" with lines sorted, so the
// order the kernel keeps set elements in does not matter.
func listTable(t *testing.T, ns string) string {
	t.Helper()
	lines := strings.Split(nftIn(t, ns, "list", "table", "ip", "kube-proxy"), "\n")
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
