package framework

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

func TestNFTServiceReadPrintsTheChainThenTheMapsItNames(t *testing.T) {
	script := fmt.Sprintf(nftServiceRead, shellQuote("service-X-ns/a/tcp/http"))
	dir := t.TempDir()
	// A stand-in nft: the chain names one map; each list says what it read.
	fake := "#!/bin/sh\ncase \"$2\" in chain) echo 'chain X { dnat ip to numgen random mod 2 map @endpoints-7 }';; map) echo \"map $5 { 10.244.1.5 . 8080 }\";; esac\n"
	if err := os.WriteFile(dir+"/nft", []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-ec", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v: %s", err, out)
	}
	want := "chain X { dnat ip to numgen random mod 2 map @endpoints-7 }\nmap endpoints-7 { 10.244.1.5 . 8080 }\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if !HoldsIP(string(out), "10.244.1.5") {
		t.Errorf("the endpoint in the map is not found in %q", out)
	}
}
