package nftables

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/knftables"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// newFakeProxier is the proxier on a knftables.Fake, as the tests use it.
func newFakeProxier(t testing.TB, mutate func(*Options)) (*Proxier, *knftables.Fake) {
	t.Helper()
	fake := knftables.NewFake(knftables.IPv4Family, tableName)
	opts := Options{MasqueradeBit: 14, NFT: fake,
		LocalDetect: LocalDetect{Mode: DetectLocalClusterCIDR, ClusterCIDRs: prefixes("10.0.0.0/16")}}
	if mutate != nil {
		mutate(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, fake
}

func TestRenderingMatchesTheGoldenFiles(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			p, fake := newFakeProxier(t, nil)
			if _, err := p.Sync(context.Background(), tc.view, full()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			compareGolden(t, tc.name, fake.Dump())
		})
	}
}

func TestNodePortAddressesFillTheNodePortIPsSet(t *testing.T) {
	p, fake := newFakeProxier(t, func(o *Options) {
		o.NodePortAddresses = prefixes("192.168.0.0/24", "127.0.0.0/8")
		o.LocalAddrs = func() ([]netip.Addr, error) { return addrs("192.168.0.2", "127.0.0.1", "10.9.9.9"), nil }
	})
	v := goldenCases()[2].view
	if _, err := p.Sync(context.Background(), v, full()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	compareGolden(t, "nodeport-addresses", fake.Dump())
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got, -update rewrites):\n%s", path, diff)
	}
}
