package terraform

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/proxyproof/proxyproof/clusters"
)

func outs(kv map[string]any) map[string]tfexec.OutputMeta {
	m := map[string]tfexec.OutputMeta{}
	for k, v := range kv {
		b, _ := json.Marshal(v)
		m[k] = tfexec.OutputMeta{Value: b}
	}
	return m
}

func TestAModuleWithoutTheKubeconfigOutputNamesItsOutputs(t *testing.T) {
	_, err := readOutputs(outs(map[string]any{"endpoint": "x", "region": "y"}), "/m", t.TempDir())
	want := `module /m has no output "kubeconfig" (a kubeconfig's content) or "kubeconfig_path" (its path), or they are empty; its outputs: endpoint, region`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestKubeconfigContentIsWrittenIntoTheWorkDir(t *testing.T) {
	dir := t.TempDir()
	o, err := readOutputs(outs(map[string]any{"kubeconfig": "apiVersion: v1\n", "node_modes": map[string]string{"a": "nftables"}}), "/m", dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.Kubeconfig)
	if err != nil || string(b) != "apiVersion: v1\n" || !strings.HasPrefix(o.Kubeconfig, dir) {
		t.Fatalf("kubeconfig %s: %q %v", o.Kubeconfig, b, err)
	}
	if o.NodeModes["a"] != "nftables" {
		t.Fatalf("node modes %v", o.NodeModes)
	}
}

func TestNodeModesAsAListAndAsABadValue(t *testing.T) {
	o, err := readOutputs(outs(map[string]any{"kubeconfig": "x", "node_modes": []string{"iptables", "nftables"}}), "/m", t.TempDir())
	if err != nil || strings.Join(o.NodeModeList, ",") != "iptables,nftables" {
		t.Fatalf("got %v %v", o.NodeModeList, err)
	}
	_, err = readOutputs(outs(map[string]any{"kubeconfig": "x", "node_modes": 3}), "/m", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `output "node_modes" = 3: want a map of node name to mode`) {
		t.Fatalf("got %v", err)
	}
	_, err = readOutputs(outs(map[string]any{"kubeconfig_path": "/nonexistent/kubeconfig"}), "/m", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `output "kubeconfig_path" = "/nonexistent/kubeconfig"`) {
		t.Fatalf("got %v", err)
	}
}

func TestTheModulesNodeModesMustHoldTheRunsMode(t *testing.T) {
	nodes := func(modes ...string) []clusters.Node {
		var out []clusters.Node
		for i, m := range modes {
			out = append(out, clusters.Node{Name: string(rune('a' + i)), Mode: m})
		}
		return out
	}
	run := func(modes ...string) clusters.Spec {
		var s clusters.Spec
		for _, m := range modes {
			s.Nodes = append(s.Nodes, clusters.NodeSpec{Mode: m})
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		nodes []clusters.Node
		spec  clusters.Spec
		want  string
	}{
		{"every node in MODE", nodes("nftables", "nftables"), run("nftables", "nftables"), ""},
		{"a mixed module run for one of its modes", nodes("iptables", "nftables"), run("nftables", "nftables"), ""},
		{"no node in MODE", nodes("nftables", "nftables"), run("iptables", "iptables"),
			`output "node_modes" says the nodes run a=nftables, b=nftables, which is not MODE=iptables`},
		{"MODE=mixed on a mixed module", nodes("iptables", "nftables"), run("iptables", "nftables"), ""},
		{"MODE=mixed on a one-mode module", nodes("iptables", "iptables"), run("iptables", "nftables"), "which is not MODE=mixed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMode(tc.nodes, tc.spec)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	got := withModes(nodes("", ""), moduleOutputs{NodeModes: map[string]string{"b": "nftables"}}, run("iptables", "iptables"))
	if got[0].Mode != "" || got[1].Mode != "nftables" {
		t.Fatalf("by name: %+v", got)
	}
	got = withModes(nodes("", ""), moduleOutputs{}, run("iptables", "iptables"))
	if got[0].Mode != "iptables" || got[1].Mode != "iptables" {
		t.Fatalf("from MODE: %+v", got)
	}
}
