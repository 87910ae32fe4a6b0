package conformance

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/framework"
)

func given(t *testing.T) Given {
	return Given{Given: framework.Given{Provider: "kind", Mode: "all", Proxier: "ours", Nodes: "2", RunDir: t.TempDir()}, Name: "conformance", Procs: 3}
}

func TestCheckRefusesBadInputNamingTheParameter(t *testing.T) {
	withRun := t.TempDir()
	if err := os.WriteFile(filepath.Join(withRun, run.MetaFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	badList := filepath.Join(t.TempDir(), "specs.yaml")
	if err := os.WriteFile(badList, []byte("focus:\n- pattern: '('\n  why: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		edit      func(*Given)
		param     string
		wantInMsg string
	}{
		{"unknown mode", func(g *Given) { g.Mode = "userspace" }, "MODE", "iptables, nftables, ipvs, mixed or all"},
		{"local has no kubelet", func(g *Given) { g.Provider = "local" }, "PROVIDER", "PROVIDER=kind"},
		{"unknown provider", func(g *Given) { g.Provider = "gke" }, "PROVIDER", "kind"},
		{"one node", func(g *Given) { g.Nodes = "1" }, "NODES", "at least 2"},
		{"cluster name", func(g *Given) { g.Name = "Bad_Name" }, "NAME", "[a-z0-9-]"},
		{"no parallelism", func(g *Given) { g.Procs = 0 }, "PROCS", "at least 1"},
		{"run dir holding a run", func(g *Given) { g.RunDir = withRun }, "RUN_DIR", "holding no run yet"},
		{"spec list that does not parse", func(g *Given) { g.SpecList = badList }, "SPECS", "missing closing )"},
	} {
		g := given(t)
		c.edit(&g)
		_, err := Check(g)
		var bad *framework.ParamError
		if !errors.As(err, &bad) || bad.Name != c.param || !strings.Contains(err.Error(), c.wantInMsg) {
			t.Errorf("%s: err %v, want a %s parameter error saying %q", c.name, err, c.param, c.wantInMsg)
		}
	}
}

func TestCheckOnKindRunsEveryModeTheHostKernelGivesAndListsTheRest(t *testing.T) {
	c, err := Check(given(t))
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, p := range c.Params {
		modes = append(modes, p.Mode)
	}
	if !slices.Contains(modes, clusters.ModeIPTables) || !slices.Contains(modes, clusters.ModeNFTables) {
		t.Errorf("MODE=all on kind runs %v, want iptables and nftables", modes)
	}
	if hostkernel.HasIPVS() {
		if !slices.Contains(modes, clusters.ModeIPVS) {
			t.Errorf("this kernel has ip_vs and MODE=all left ipvs out: %+v", c.LeftOut)
		}
		return
	}
	if slices.Contains(modes, clusters.ModeIPVS) || len(c.LeftOut) != 1 || c.LeftOut[0].Mode != clusters.ModeIPVS || !strings.Contains(c.LeftOut[0].Why, "ip_vs") {
		t.Errorf("no ip_vs here: MODE=all runs %v and leaves out %+v, want ipvs left out naming ip_vs", modes, c.LeftOut)
	}
	g := given(t)
	g.Mode = clusters.ModeIPVS
	_, err = Check(g)
	if err == nil || !strings.Contains(err.Error(), "PROVIDER=local") {
		t.Errorf("MODE=ipvs on kind without ip_vs: err %v, want a refusal pointing at PROVIDER=local", err)
	}
}

func TestCheckBuildNamesTheMakeTargetThatBuildsE2ETest(t *testing.T) {
	dir := t.TempDir()
	err := CheckBuild(dir)
	if err == nil || !strings.Contains(err.Error(), "make conformance-deps") || !strings.Contains(err.Error(), E2ETest) {
		t.Fatalf("empty binary directory: err %v, want it to name e2e.test and make conformance-deps", err)
	}
	for _, b := range []string{E2ETest, Ginkgo} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckBuild(dir); err != nil {
		t.Errorf("directory with both binaries: %v", err)
	}
}
