package healthz

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestKernelProxyHealthRunsInsideTheNodeNamespace(t *testing.T) {
	ns := scratchNetns(t, "")
	h := NewProxyHealth("127.0.0.1:10256", time.Minute, ns, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	var code int
	var err error
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, _, _, err = getIn(ns, "http://127.0.0.1:10256/livez"); err == nil {
			break
		}
	}
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /livez in %s = %d %v, want 200", ns, code, err)
	}
	h.Updated(time.Now())
	h.SetNodeEligible(false)
	if code, _, _, err := getIn(ns, "http://127.0.0.1:10256/healthz"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz of a deleting node = %d %v, want 503", code, err)
	}
}
