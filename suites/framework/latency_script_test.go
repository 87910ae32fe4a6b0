package framework

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

func TestNFTServiceReadPrintsTheChainThenTheMapsItNames(t *testing.T) {
	script := fmt.Sprintf(nftServiceRead, shellQuote("service-X-ns/a/tcp/http"))
	// A stand-in nft: the chain names one map twice and one set; each list
	// says what it read. Nothing but the stand-in is on the PATH, as in
	// the node helper's tools image (nft, no grep, tr or sort).
	out := runWithStandIn(t, script, "nft", "#!/bin/sh\ncase \"$2\" in chain) echo 'chain X { ip saddr @masq-src* jump mark; dnat ip to numgen random mod 2 map @endpoints-7,'; echo '  meta l4proto tcp dnat to numgen random mod 2 map @endpoints-7 }';; map) [ \"$5\" = endpoints-7 ] && echo \"map $5 { 10.244.1.5 . 8080 }\" || exit 1;; set) echo \"set $5 { 10.244.0.0/16 }\";; esac\n", false)
	want := "chain X { ip saddr @masq-src* jump mark; dnat ip to numgen random mod 2 map @endpoints-7,\n  meta l4proto tcp dnat to numgen random mod 2 map @endpoints-7 }\nset masq-src { 10.244.0.0/16 }\nmap endpoints-7 { 10.244.1.5 . 8080 }\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if !HoldsIP(string(out), "10.244.1.5") {
		t.Errorf("the endpoint in the map is not found in %q", out)
	}
}

// In upstream's large-cluster mode (over 1,000 endpoints) the KUBE-SVC
// chain names no endpoint: the read must follow its jumps to the KUBE-SEP
// chains, and only those, to find one.
func TestIPTablesServiceReadFollowsTheServiceChainsToTheirEndpointChains(t *testing.T) {
	script := fmt.Sprintf(iptablesServiceRead, "KUBE-SVC-A KUBE-SVC-B")
	save := `*nat
:KUBE-SEP-A1 - [0:0]
-A KUBE-SEP-A1 -s 198.19.0.1/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-A1 -p tcp -m tcp -j DNAT --to-destination 198.19.0.1:8080
-A KUBE-SVC-A ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-A -j KUBE-SEP-A1
-A KUBE-SVC-B -m statistic --mode random --probability 0.5 -j KUBE-SEP-B1
-A KUBE-SVC-B -j KUBE-SEP-B2
-A KUBE-SEP-B1 -p tcp -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-B2 -p tcp -m tcp -j DNAT --to-destination 10.244.2.6:8080
-A KUBE-SVC-C -j KUBE-SEP-C1
-A KUBE-SEP-C1 -p tcp -m tcp -j DNAT --to-destination 10.244.3.7:8080
COMMIT
`
	out := runWithStandIn(t, script, "iptables-save", "#!/bin/sh\ncat <<'EOF'\n"+save+"EOF\n", true)
	for _, ip := range []string{"198.19.0.1", "10.244.1.5", "10.244.2.6"} {
		if !HoldsIP(string(out), ip) {
			t.Errorf("endpoint %s of a read Service not found in:\n%s", ip, out)
		}
	}
	if HoldsIP(string(out), "10.244.3.7") {
		t.Errorf("an endpoint of a Service not asked for is in:\n%s", out)
	}
}

// runWithStandIn runs script with sh -ec, a stand-in for the command name
// (a shell script, standIn) first on its PATH, and returns its output.
// Without withPath the stand-in is all the PATH holds.
func runWithStandIn(t *testing.T, script, name, standIn string, withPath bool) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/"+name, []byte(standIn), 0o755); err != nil {
		t.Fatal(err)
	}
	path := dir
	if withPath {
		path += ":" + os.Getenv("PATH")
	}
	cmd := exec.Command("/bin/sh", "-ec", script)
	cmd.Env = append(os.Environ(), "PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v: %s", err, out)
	}
	return out
}
