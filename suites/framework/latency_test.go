package framework

import "testing"

// The names upstream kube-proxy's own tests expect for Service ns1/svc1
// port p80 (pkg/proxy/iptables and pkg/proxy/nftables proxier_test.go).
func TestServiceChainsAreUpstreamKubeProxyNames(t *testing.T) {
	if got, want := IPTablesServiceChain("ns1", "svc1", "tcp", "p80"), "KUBE-SVC-XPGD46QRK7WJZT7O"; got != want {
		t.Errorf("iptables chain = %s, want %s", got, want)
	}
	if got, want := NFTServiceChain("ns1", "svc1", "tcp", "p80"), "service-ULMVA6XW-ns1/svc1/tcp/p80"; got != want {
		t.Errorf("nftables chain = %s, want %s", got, want)
	}
}
