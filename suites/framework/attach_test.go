package framework

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
)

// attachingProvider hands back its running cluster by name.
type attachingProvider struct {
	fakeProvider
	attached string
}

func (p *attachingProvider) Attach(name string) (clusters.Cluster, error) {
	p.attached = name
	return p.cluster, nil
}

func TestCLUSTERAttachesToTheRunningClusterAndTeardownLeavesIt(t *testing.T) {
	fc := &fakeCluster{server: apiServer(t), nodes: []clusters.Node{{Name: "n1", Mode: "ipvs"}, {Name: "n2", Mode: "ipvs"}},
		answer: func(string, []string) ([]byte, error) { return nil, errors.New("no kernel here") }}
	prov := &attachingProvider{fakeProvider: fakeProvider{cluster: fc}}
	p := Params{Provider: "fake", Mode: "ipvs", Proxier: "ours", Nodes: 2, RunDir: t.TempDir(), Cluster: "val42"}
	f, err := SetupWith(context.Background(), p, prov)
	if err != nil {
		t.Fatalf("SetupWith: %v", err)
	}
	if prov.attached != "val42" || prov.created {
		t.Fatalf("attached %q, created %v; want cluster val42 attached and nothing created", prov.attached, prov.created)
	}
	if err := f.Teardown(context.Background()); err != nil || fc.destroyed {
		t.Fatalf("Teardown: err %v, destroyed %v; want the attached cluster left running", err, fc.destroyed)
	}
	// The census ran at attach and at teardown: make validate's phase after
	// the switch shows there every node not in its new mode.
	if !strings.Contains(strings.Join(fc.execs, "\n"), "node n2: ") {
		t.Errorf("no census of the attached cluster's nodes: execs %v", fc.execs)
	}
}

func TestAnAttachedClusterWhoseNodeRunsAnotherModeIsRefusedNamingTheNode(t *testing.T) {
	fc := &fakeCluster{nodes: []clusters.Node{{Name: "n1", Mode: "ipvs"}, {Name: "n2", Mode: "iptables"}}}
	prov := &attachingProvider{fakeProvider: fakeProvider{cluster: fc}}
	_, err := SetupWith(context.Background(), Params{Provider: "fake", Mode: "ipvs", RunDir: t.TempDir(), Cluster: "val42"}, prov)
	if err == nil || !strings.Contains(err.Error(), "node n2 runs mode iptables, not MODE=ipvs") {
		t.Fatalf("error %v; want one naming n2 and its mode", err)
	}
}

func TestAProviderThatCannotAttachIsNamed(t *testing.T) {
	_, err := SetupWith(context.Background(), Params{Mode: "ipvs", RunDir: t.TempDir(), Cluster: "val42"}, &fakeProvider{cluster: &fakeCluster{}})
	if err == nil || !strings.Contains(err.Error(), "CLUSTER") || !strings.Contains(err.Error(), "provider fake cannot attach") {
		t.Fatalf("error %v; want CLUSTER refused naming the provider", err)
	}
}

func TestMIGRATE_TOMustBeAnotherMode(t *testing.T) {
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) { return v, k == EnvMigrateTo && v != "" }
	}
	if to, err := MigrateToFromEnv(env(""), "iptables"); to != "" || err != nil {
		t.Errorf("unset: %q, %v; want nothing (the spec skips)", to, err)
	}
	if to, err := MigrateToFromEnv(env("ipvs"), "iptables"); to != "ipvs" || err != nil {
		t.Errorf("ipvs from iptables: %q, %v", to, err)
	}
	if _, err := MigrateToFromEnv(env("iptables"), "iptables"); err == nil || !strings.Contains(err.Error(), "nftables or ipvs") {
		t.Errorf("the same mode: %v; want a refusal naming the others", err)
	}
}
