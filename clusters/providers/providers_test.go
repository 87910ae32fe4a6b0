package providers

import (
	"slices"
	"testing"
)

func TestEveryRegisteredProviderAnswersToItsName(t *testing.T) {
	if _, ok := Get(Default); !ok {
		t.Fatalf("the default provider %q is not registered", Default)
	}
	for _, n := range Names() {
		p, _ := Get(n)
		if p.Name() != n {
			t.Errorf("provider registered as %q calls itself %q: PROVIDER=%s would record another name", n, p.Name(), n)
		}
		if slices.Contains(Planned(), n) {
			t.Errorf("provider %q is registered and still listed as not built", n)
		}
	}
	if _, ok := Get("gke"); ok {
		t.Error("an unknown name found a provider")
	}
}
