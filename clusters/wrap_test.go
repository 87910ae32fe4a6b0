package clusters

import (
	"context"
	"testing"
)

// restarting is a Cluster with a capability; wrapping hides it from a
// plain type assertion, not from As.
type restarting struct{ Cluster }

func (restarting) RestartProxier(context.Context, string, ProxierChange) (Restarted, error) {
	return Restarted{}, nil
}

type wrapping struct{ Cluster }

func (w wrapping) Unwrap() Cluster { return w.Cluster }

type limited struct{ Cluster }

func (limited) NodeAccess() error    { return nil }
func (limited) OutsideAccess() error { return nil }

func TestAsFindsACapabilityOfTheWrappedCluster(t *testing.T) {
	var c Cluster = wrapping{wrapping{restarting{}}}
	if _, ok := c.(ProxierRestarter); ok {
		t.Fatal("the test's wrapper has RestartProxier itself; it should not")
	}
	if _, ok := As[ProxierRestarter](c); !ok {
		t.Error("As did not find the restart of the cluster two wrappers in")
	}
	if _, ok := As[KernelTuner](c); ok {
		t.Error("As found a KernelTuner that no cluster in the chain has")
	}
	if _, ok := As[Limited](wrapping{limited{}}); !ok {
		t.Error("As did not find the access limits of the wrapped cluster")
	}
	if _, ok := As[ProxierRestarter](restarting{}); !ok {
		t.Error("As did not find the capability of an unwrapped cluster")
	}
	if _, ok := As[ProxierRestarter](nil); ok {
		t.Error("As found a capability on no cluster")
	}
}
