package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/hostkernel"
	"github.com/proxyproof/proxyproof/reports/run"
	"github.com/proxyproof/proxyproof/suites/census"
	"github.com/proxyproof/proxyproof/suites/framework"
)

func TestArgsReachGinkgoAsItsCompiledSuiteFlags(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"a ginkgo CLI flag gets the ginkgo. prefix", []string{"--label-filter=feature:clusterip"}, []string{"-ginkgo.label-filter=feature:clusterip"}},
		{"a flag's separate value is kept as is", []string{"--focus", "UDP"}, []string{"-ginkgo.focus", "UDP"}},
		{"test and ginkgo flags pass through", []string{"-test.v", "-ginkgo.v"}, []string{"-test.v", "-ginkgo.v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ginkgoArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ginkgoArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// listing is every path under dir, to show a refused run created nothing.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBadParametersAreRefusedInOneLineBeforeAnythingExists(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	used := filepath.Join(dir, "used")
	if err := os.MkdirAll(used, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(used, run.LogFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		argv []string
		want string // the whole line after "e2e: ", or its start
	}{
		{"zero nodes are refused", []string{"--nodes", "0"}, `NODES="0": want a whole number of nodes, at least 2`},
		{"one node is refused", []string{"--nodes", "1"}, `NODES="1": want a whole number of nodes, at least 2`},
		{"nodes that are not a number are refused", []string{"--nodes", "two"}, `NODES="two": want a whole number`},
		{"a proxier path that does not exist is refused", []string{"--proxier", "/nonexistent"}, `PROXIER="/nonexistent": want ours, kube-proxy or the path of an executable file (stat /nonexistent: no such file or directory)`},
		{"a proxier that is a directory is refused", []string{"--proxier", dir}, `PROXIER="` + dir + `": want ours, kube-proxy or the path of an executable file`},
		{"a proxier that is not executable is refused", []string{"--proxier", file}, `PROXIER="` + file + `": want ours, kube-proxy or the path of an executable file (` + file + `: not an executable file)`},
		{"an unknown mode is refused", []string{"--mode", "bogus"}, `MODE="bogus": want iptables, nftables, ipvs, mixed or all`},
		{"NODE_MODES with one node is refused", []string{"--mode", "mixed", "--node-modes", "nftables"}, `NODE_MODES="nftables": want at least 2 nodes`},
		{"NODE_MODES with an unknown mode is refused", []string{"--mode", "mixed", "--node-modes", "iptables,userspace"}, `NODE_MODES="iptables,userspace": want a mode per node`},
		{"an unknown provider is refused", []string{"--provider", "gke"}, `PROVIDER="gke": want one of `},
		{"keep other than 1/0/true/false is refused", []string{"--keep", "yes"}, `KEEP="yes": want 1 or true`},
		{"a run directory that is a file is refused", []string{"--run-dir", file}, `RUN_DIR="` + file + `": want a directory`},
		{"a run directory holding a run is refused", []string{"--run-dir", used}, `RUN_DIR="` + used + `": want a directory holding no run yet (this one has run.log`},
		{"node kernels that are not one per node are refused", []string{"--node-kernels", "host,vm,vm"}, `NODE_KERNELS="host,vm,vm": want auto, host or vm, once for every node or once per node of the 2 (3 values for 2 nodes`},
		{"an unknown node kernel is refused", []string{"--node-kernels", "kvm"}, `NODE_KERNELS="kvm": want auto, host or vm`},
		{"a node of its own kernel on kind is refused", []string{"--provider", "kind", "--node-kernels", "auto,vm"}, `NODE_KERNELS="auto,vm": want kernels PROVIDER=kind can give its nodes (`},
		{"a label filter Ginkgo cannot parse is refused", []string{"--", "--label-filter=scheduler ||"}, `ARGS="--label-filter=scheduler ||": want a Ginkgo label filter`},
		{"a label filter with unbalanced parentheses is refused", []string{"--", "--label-filter", "(a || b"}, `ARGS="--label-filter=(a || b": want a Ginkgo label filter`},
		{"a label filter flag without its value is refused", []string{"--", "--label-filter"}, `ARGS="--label-filter": want --label-filter followed by its value`},
		{"a focus that is not a regular expression is refused", []string{"--", "--focus=(UDP"}, `ARGS="--focus=(UDP": want a Go regular expression (error parsing regexp`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(dir) // the default run directory, runs/..., would land here
			before := listing(t, dir)
			err := mainErr(tt.argv, func([]string) error {
				t.Fatal("set-up ran for parameters that should have been refused")
				return nil
			}, framework.InterruptsFrom(nil))
			if err == nil {
				t.Fatalf("mainErr(%q) accepted bad parameters", tt.argv)
			}
			if !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q, want one line starting %q", err, tt.want)
			}
			if got := exitCode(err); got != exitBadParams {
				t.Errorf("exit status %d, want %d (bad parameters)", got, exitBadParams)
			}
			if after := listing(t, dir); !slices.Equal(before, after) {
				t.Errorf("a refused run created files: before %q, after %q", before, after)
			}
		})
	}
}

func TestGoodParametersRunSetUpBeforeTheRunDirectoryExists(t *testing.T) {
	runDir := filepath.Join(t.TempDir(), "run")
	var got []string
	stop := errors.New("set-up stopped by the test")
	err := mainErr([]string{"--mode", "nftables", "--nodes", "3", "--run-dir", runDir, "--", "--label-filter=feature:clusterip || (feature:nodeport && !slow)"},
		func(steps []string) error { got = steps; return stop }, framework.InterruptsFrom(nil))
	if !errors.Is(err, stop) {
		t.Fatalf("mainErr = %v, want set-up's error", err)
	}
	if want := []string{"hack/install-deps.sh", "hack/controlplane/build.sh"}; !slices.Equal(got, want) {
		t.Errorf("set-up steps %q, want %q", got, want)
	}
	// A node of its own kernel needs the kernel VM image, whatever its mode.
	err = mainErr([]string{"--mode", "nftables", "--node-kernels", "host,vm", "--run-dir", runDir},
		func(steps []string) error { got = steps; return stop }, framework.InterruptsFrom(nil))
	if !errors.Is(err, stop) || !slices.Contains(got, "hack/vm/build-image.sh") {
		t.Errorf("NODE_KERNELS=host,vm: set-up steps %q (%v), want the VM image built", got, err)
	}
	if exitCode(err) != 1 {
		t.Errorf("a failed set-up exits %d, want 1", exitCode(err))
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Errorf("run directory exists after set-up failed (stat: %v)", err)
	}
}

func TestAModeInWhichNoSpecRanFailsNamingTheFilterAndTheLabels(t *testing.T) {
	runs := filepath.Join("..", "..", "..", "..", "reports", "testdata", "runs")
	tests := []struct {
		name    string
		report  string
		args    []string
		wantErr []string // parts of the message; none: the mode passes
	}{
		{"a filter that matched nothing fails and names itself and the labels",
			filepath.Join(runs, "filtered", "iptables", run.GinkgoFile), []string{"-ginkgo.label-filter=nothing-matches"},
			[]string{"no spec ran (0 of 9)", `--label-filter="nothing-matches" matched none`, "the suite's labels: feature:Churn, feature:ClusterIP, feature:Endpoints, feature:Hairpin, feature:NodePort, feature:TrafficPolicy"}},
		{"a focus given as a separate argument is named too",
			filepath.Join(runs, "filtered", "iptables", run.GinkgoFile), []string{"-ginkgo.focus", "scheduler"},
			[]string{`--focus="scheduler" matched none`}},
		{"a run in which specs ran passes, failed ones included",
			filepath.Join(runs, "after", "iptables", run.GinkgoFile), []string{"-ginkgo.label-filter=feature:ClusterIP"}, nil},
		{"a missing report is an error, not a pass",
			filepath.Join(t.TempDir(), run.GinkgoFile), nil, []string{"ginkgo report"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSomeSpecRan(tt.report, tt.args)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("checkSomeSpecRan = %v, want nil: specs ran", err)
				}
				return
			}
			if err == nil {
				t.Fatal("checkSomeSpecRan = nil, want an error: no spec ran")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestARGSSplitsAsAUserWhoTypedItIntoMakeMeansIt(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"a label filter with || stays one value", "--label-filter=scheduler || churn", []string{"--label-filter=scheduler || churn"}},
		{"quotes group as in a shell", `--label-filter='a && !b' --focus "UDP x"`, []string{"--label-filter=a && !b", "--focus", "UDP x"}},
		{"a bare flag takes the words after it as its value", "--focus Service reaches --skip=IPv6", []string{"--focus", "Service reaches", "--skip=IPv6"}},
		{"a flag without a value stays alone", "-test.v --label-filter=x", []string{"-test.v", "--label-filter=x"}},
		{"nothing is no arguments", "  ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitArgs(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if _, err := splitArgs("UDP --focus x"); err == nil || !strings.Contains(err.Error(), `"UDP" is not a flag`) {
		t.Errorf("a leading word that is no flag: err = %v, want it named", err)
	}
}

// kind nodes share this host's kernel: without ip_vs, MODE=ipvs is refused
// before any set-up and MODE=all runs the other modes, saying so.
func TestKindRefusesIPVSBeforeSetUpWhereTheKernelHasNoIPVS(t *testing.T) {
	if hostkernel.HasIPVS() {
		t.Skip("this kernel has ip_vs: kind can run ipvs nodes here")
	}
	setupRan := false
	err := mainErr([]string{"--provider", "kind", "--mode", "ipvs", "--run-dir", filepath.Join(t.TempDir(), "r")},
		func([]string) error { setupRan = true; return nil }, framework.InterruptsFrom(nil))
	if exitCode(err) != 2 || setupRan || err == nil || !strings.Contains(err.Error(), `MODE="ipvs": want a mode PROVIDER=kind can run here`) || !strings.Contains(err.Error(), "PROVIDER=local") {
		t.Errorf("MODE=ipvs on kind: err %v (exit %d, set-up ran %v); want exit 2 before set-up, naming ip_vs and PROVIDER=local", err, exitCode(err), setupRan)
	}
	err = mainErr([]string{"--provider", "kind", "--mode", "mixed", "--node-modes", "iptables,ipvs", "--run-dir", filepath.Join(t.TempDir(), "r")},
		func([]string) error { setupRan = true; return nil }, framework.InterruptsFrom(nil))
	if exitCode(err) != 2 || setupRan || err == nil || !strings.HasPrefix(err.Error(), `NODE_MODES="iptables,ipvs": want modes PROVIDER=kind can run here: iptables, nftables (`) {
		t.Errorf("NODE_MODES=iptables,ipvs on kind: err %v (exit %d, set-up ran %v); want exit 2 before set-up, naming what works", err, exitCode(err), setupRan)
	}
	var steps []string
	stop := errors.New("stop")
	err = mainErr([]string{"--provider", "kind", "--mode", "all", "--run-dir", filepath.Join(t.TempDir(), "r")},
		func(s []string) error { steps = s; return stop }, framework.InterruptsFrom(nil))
	if !errors.Is(err, stop) {
		t.Fatalf("MODE=all on kind: %v, want it to reach set-up", err)
	}
	if !slices.Contains(steps, "hack/kind/build-images.sh") {
		t.Errorf("kind's set-up steps %q lack hack/kind/build-images.sh", steps)
	}
}

func TestBadChurnParametersAreRefusedBeforeAnythingExists(t *testing.T) {
	for _, tt := range []struct{ env, value, want string }{
		{"CHURN_REPLICAS", "0", `CHURN_REPLICAS="0": want a whole number of replicas from 1 to 200`},
		{"CHURN_RATE", "-5", `CHURN_RATE="-5": want new connections a second, more than 0`},
		{"CHURN_MAX_SURGE", "150%", `CHURN_MAX_SURGE="150%": want a whole number of pods (0 or more) or a percentage`},
	} {
		t.Run(tt.env, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			t.Setenv(tt.env, tt.value)
			err := mainErr(nil, func([]string) error {
				t.Fatal("set-up ran for parameters that should have been refused")
				return nil
			}, framework.InterruptsFrom(nil))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || exitCode(err) != exitBadParams {
				t.Errorf("%s=%s: error %v (exit %d), want one line starting %q, exit %d", tt.env, tt.value, err, exitCode(err), tt.want, exitBadParams)
			}
			if got := listing(t, dir); len(got) != 1 {
				t.Errorf("a refused run left %v", got)
			}
		})
	}
}

// refuses is a provider that cannot run some modes on this machine.
type refuses []string

func (r refuses) Precheck(spec clusters.Spec) error {
	for _, n := range spec.Nodes {
		if slices.Contains(r, n.Mode) {
			return fmt.Errorf("mode %s: %w", n.Mode, clusters.ErrModeUnsupported)
		}
	}
	return nil
}

func TestMixedTakesEveryModeTheProviderCanRunUnlessNodeModesSays(t *testing.T) {
	mixed := framework.Params{Provider: "p", Mode: framework.ModeMixed, NodeModes: "iptables,nftables,ipvs", Nodes: 3}
	got, err := precheckMixed(refuses{"ipvs"}, mixed, false)
	if err != nil || got.NodeModes != "iptables,nftables" || got.Nodes != 2 {
		t.Errorf("default MODE=mixed without ipvs: %+v, %v; want iptables,nftables on 2 nodes", got, err)
	}
	explicit := mixed
	explicit.NodeModes = "nftables,ipvs"
	_, err = precheckMixed(refuses{"ipvs"}, explicit, true)
	if err == nil || !strings.HasPrefix(err.Error(), `NODE_MODES="nftables,ipvs": want modes PROVIDER=p can run here: iptables, nftables (mode ipvs: mode not supported`) {
		t.Errorf("NODE_MODES naming ipvs where it cannot run: %v, want a refusal naming NODE_MODES and what works", err)
	}
	if _, err = precheckMixed(refuses{"ipvs", "nftables"}, mixed, false); err == nil || !strings.HasPrefix(err.Error(), `MODE="mixed": want at least 2 modes PROVIDER=p can run here: iptables`) {
		t.Errorf("MODE=mixed where one mode runs: %v, want a refusal (no mix of one mode)", err)
	}
}

func TestACensusThatFindsAnotherModeFailsTheModeNamingTheNode(t *testing.T) {
	dir := t.TempDir()
	bad := census.Census{When: census.End, Nodes: []census.Node{
		{Name: "n1", Expected: "iptables", Declared: "iptables", Carried: "iptables"},
		{Name: "n2", Expected: "nftables", Declared: "nftables", Carried: "nftables", Leftovers: []string{"iptables"},
			Problems: []string{"leftover iptables state: iptables-legacy: KUBE-SERVICES in nat"}},
	}}
	if err := census.Append(dir, bad); err != nil {
		t.Fatal(err)
	}
	mm := run.ModeMeta{Name: "mixed", Nodes: map[string]string{"n1": "iptables", "n2": "nftables"}}
	err := checkCensus(&mm, dir, nil, func(string, ...any) {})
	if err == nil || err.Error() != "mode census at the end: node n2: leftover iptables state: iptables-legacy: KUBE-SERVICES in nat" {
		t.Errorf("checkCensus = %v, want the mode failed naming n2's leftover", err)
	}
	if len(mm.Census) != 1 || mm.Census[0].Nodes[1].Leftovers[0] != "iptables" {
		t.Errorf("run.json's census = %+v, want the census as taken", mm.Census)
	}
	if err := checkCensus(&run.ModeMeta{Name: "iptables", Nodes: mm.Nodes}, t.TempDir(), nil, func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "no mode census was taken") {
		t.Errorf("a cluster with no census: %v, want the mode failed", err)
	}
}
