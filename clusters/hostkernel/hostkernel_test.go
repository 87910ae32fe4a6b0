package hostkernel

import (
	"os"
	"strings"
	"testing"
)

// HasIPVS must agree with the kernel's own list of what it runs: ip_vs in
// /proc/modules (loaded) or its proc file (built in).
func TestHasIPVSAgreesWithTheKernelsModuleList(t *testing.T) {
	modules, err := os.ReadFile("/proc/modules")
	loaded := err == nil && strings.Contains(string(modules), "ip_vs ")
	if loaded && !HasIPVS() {
		t.Errorf("ip_vs is loaded (/proc/modules) but HasIPVS says no")
	}
	if _, err := os.Stat("/proc/net/ip_vs"); (err == nil) != HasIPVS() {
		t.Errorf("HasIPVS=%v but /proc/net/ip_vs stat error is %v", HasIPVS(), err)
	}
}
