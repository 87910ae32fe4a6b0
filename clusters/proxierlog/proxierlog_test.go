package proxierlog

import (
	"strings"
	"testing"
)

// A restore error as kube-proxy logs it, once a second: klog writes the
// error's lines below its own, indented, and closes with " >".
const failingSyncs = `I1207 21:20:01.112233     412 proxier.go:800] "Syncing iptables rules"
E1207 21:20:02.331122     412 proxier.go:1520] "Failed to execute iptables-restore" err=<
	exit status 4: iptables-restore: line 8 failed
 >
I1207 21:20:03.000000     412 proxier.go:800] "Syncing iptables rules"
E1207 21:20:03.331122     412 proxier.go:1520] "Failed to execute iptables-restore" err=<
	exit status 4: iptables-restore: line 8 failed
 >
W1207 21:20:04.000000     412 proxier.go:900] "Slow sync"
`

func TestErrorsKeepAMultiLineErrorWholeAndCountItsRepeats(t *testing.T) {
	lines, errs := Errors(failingSyncs, 3)
	if !errs || len(lines) != 1 {
		t.Fatalf("Errors = %q, %v: want the one distinct error", lines, errs)
	}
	for _, want := range []string{`"Failed to execute iptables-restore" err=<`, "exit status 4: iptables-restore: line 8 failed", "(logged 2 times)"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("Errors = %q, want it to contain %q", lines[0], want)
		}
	}
	if strings.Contains(lines[0], "Slow sync") || strings.Contains(lines[0], "21:20:02") {
		t.Errorf("Errors = %q: a warning joined in, or the time kept (repeats would not fold)", lines[0])
	}
}
