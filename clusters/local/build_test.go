package local

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A cold build cache must fail the build with its own bound, named as
// such, not eat the cluster's readiness budget and time out as "not ready".
func TestABuildThatOutrunsItsBoundSaysSoAndNamesTheFix(t *testing.T) {
	err := buildPrograms(context.Background(), "", t.TempDir(), time.Millisecond)
	if err == nil {
		t.Fatal("a 1 ms build bound was met; want it exceeded")
	}
	for _, want := range []string{"took longer than 1ms", "make deps"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
