package clusters

import (
	"strings"
	"testing"
)

// What kube-proxy v1.34.4's --cleanup --proxy-mode=ipvs printed in a
// kernel-VM node (stop 24), shortened: info lines around two errors.
const kubeProxyIPVSCleanup = `I1207 21:20:01.112233     412 server_linux.go:53] "Using iptables proxy"
I1207 21:20:01.213344     412 proxier.go:414] "Tearing down inactive rules"
E1207 21:20:02.331122     412 proxier.go:461] "Failed to execute iptables-restore" err=<
	exit status 4: iptables-restore: line 8 failed
 > table="nat"
E1207 21:20:03.402211     412 proxier.go:497] "Failed to execute iptables-restore" err="CHAIN_DEL failed (Device or resource busy): chain KUBE-PROXY-FIREWALL" table="filter"
I1207 21:20:04.500000     412 proxier.go:725] "Deleted dummy device" device="kube-ipvs0"
F1207 21:20:04.600000     412 server.go:130] "Error running ProxyServer" err="encountered an error while tearing down rules"
`

func TestACleanupFailureNamesTheProxiersErrors(t *testing.T) {
	got := CleanupFailure("kube-proxy --cleanup --proxy-mode=ipvs", []byte(kubeProxyIPVSCleanup))
	for _, want := range []string{"kube-proxy --cleanup --proxy-mode=ipvs exited non-zero", "Failed to execute iptables-restore", "exit status 4: iptables-restore: line 8 failed", "KUBE-PROXY-FIREWALL"} {
		if !strings.Contains(got, want) {
			t.Errorf("CleanupFailure = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "Deleted dummy device") || strings.Contains(got, "Tearing down") {
		t.Errorf("CleanupFailure = %q: info lines beside the errors", got)
	}
	if strings.Contains(got, "\n") {
		t.Errorf("CleanupFailure = %q: want one line (it goes in a report's table)", got)
	}
}

func TestACleanupFailureWithoutErrorLinesKeepsItsLastLines(t *testing.T) {
	out := "line 1\nline 2\nline 3\nline 4\nline 5\nsegmentation fault\n"
	got := CleanupFailure("proxier --cleanup", []byte(out))
	if !strings.HasSuffix(got, "line 3 | line 4 | line 5 | segmentation fault") || strings.Contains(got, "line 2") {
		t.Errorf("CleanupFailure = %q, want the command and the last %d lines", got, cleanupLines)
	}
}
