package kind

import (
	"context"
	"os"
	"testing"
	"time"
)

// needDocker skips, saying why, where no engine or no root is here.
func needDocker(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (host firewall rules)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := docker(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("no Docker engine answers here (make kind-images starts one): %v", err)
	}
}

// Needs the engine, not the images: the network a cluster gets is
// internal, sealed by the host firewall, open to itself only, and Down
// removes it and its rule by the cluster's name alone.
func TestAClustersNetworkIsSealedAndDownRemovesItWithItsRule(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	p := &Provider{StateRoot: t.TempDir()}
	name := testName("ppknet")
	t.Cleanup(func() { _ = p.Down(context.Background(), name) })
	n, err := createNetwork(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Internal || n.Labels[labelCluster] != name {
		t.Errorf("network %s: internal=%v labels=%v, want internal and labelled %s=%s", n.Name, n.Internal, n.Labels, labelCluster, name)
	}
	dump, err := iptables(ctx, "-S", chainUser)
	if err != nil {
		t.Fatal(err)
	}
	rules := rulesTagged(dump, ruleComment(name))
	if len(rules) != 1 || !containsSeq(rules[0], []string{"-i", n.Bridge(), "-o", n.Bridge(), "-m", "comment"}) || rules[0][len(rules[0])-1] != "ACCEPT" {
		t.Errorf("rules for %s in %s: %q, want one accepting %s to itself", name, chainUser, rules, n.Bridge())
	}
	left, err := p.leftovers(ctx, name)
	if err != nil || len(left) != 2 {
		t.Errorf("leftovers before down: %v (%v), want the network and the rule", left, err)
	}
	if err := p.Down(ctx, name); err != nil {
		t.Fatalf("down: %v", err)
	}
	checkGone(t, p, name)
	if err := p.Down(ctx, name); err != nil {
		t.Errorf("down of nothing: %v, want no error", err)
	}
}
