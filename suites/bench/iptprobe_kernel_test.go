package bench

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Above 1,000 Service ports our iptables mode dispatches through bucket
// chains (KUBE-SERVICES -> KUBE-SVCB-X -> KUBE-SVCB-XY); the probe must find
// the Services there on both backends, as it finds upstream's in
// KUBE-SERVICES.
func TestIPTablesProbeFindsServicesBehindBucketChains(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads rules into a scratch namespace")
	}
	rules := `*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVCB-A - [0:0]
:KUBE-SVCB-3A - [0:0]
:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]
:KUBE-SVC-BBBBBBBBBBBBBBBB - [0:0]
-A KUBE-SERVICES -d 0.0.0.10/0.0.0.15 -j KUBE-SVCB-A
-A KUBE-SERVICES -d 10.96.0.7/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-BBBBBBBBBBBBBBBB
-A KUBE-SVCB-A -d 0.0.0.58/0.0.0.255 -j KUBE-SVCB-3A
-A KUBE-SVCB-3A -d 10.96.1.58/32 -p tcp -m comment --comment "bench/svc-00001:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-AAAAAAAAAAAAAAAA
COMMIT
`
	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			ns := probeNamespace(t)
			dir, err := backendDir(t.TempDir(), backend)
			if err != nil {
				t.Fatal(err)
			}
			load := exec.Command("ip", "netns", "exec", ns, "iptables-restore")
			load.Env = withPath(dir)
			load.Stdin = strings.NewReader(rules)
			if out, err := load.CombinedOutput(); err != nil {
				t.Fatalf("iptables-restore: %v: %s", err, out)
			}
			k := &iptablesKernel{ns: ns, path: dir, legacy: backend == "legacy"}
			defer k.close()
			got, err := k.services(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"10.96.1.58": "KUBE-SVC-AAAAAAAAAAAAAAAA", "10.96.0.7": "KUBE-SVC-BBBBBBBBBBBBBBBB"}
			if len(got) != len(want) || got["10.96.1.58"] != want["10.96.1.58"] || got["10.96.0.7"] != want["10.96.0.7"] {
				t.Errorf("services read %v, want %v", got, want)
			}
		})
	}
}
