package tfprovider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func model(provider, name string, nodes int64, mode string, nodeModes ...string) clusterModel {
	m := clusterModel{ClusterProvider: types.StringValue(provider), Name: types.StringValue(name),
		Nodes: types.Int64Null(), Mode: types.StringNull(), NodeModes: types.ListNull(types.StringType), Proxier: types.StringNull()}
	if nodes != 0 {
		m.Nodes = types.Int64Value(nodes)
	}
	if mode != "" {
		m.Mode = types.StringValue(mode)
	}
	if nodeModes != nil {
		var elems []attr.Value
		for _, nm := range nodeModes {
			elems = append(elems, types.StringValue(nm))
		}
		m.NodeModes = types.ListValueMust(types.StringType, elems)
	}
	return m
}

func TestBadAttributesGetADiagnosticNamingTheAttribute(t *testing.T) {
	for _, tc := range []struct {
		name       string
		m          clusterModel
		attr, want string
	}{
		{"an unknown cluster provider", model("gke", "a", 2, "iptables"), "cluster_provider", `cluster_provider = "gke": want one of local, kind.`},
		{"an unknown mode", model("kind", "a", 2, "ipvx"), "mode", `mode = "ipvx": want iptables, nftables, ipvs.`},
		{"no nodes", model("kind", "a", -1, "iptables"), "nodes", "nodes = -1: want 1 to 16"},
		{"too many nodes", model("kind", "a", 17, "iptables"), "nodes", "nodes = 17: want 1 to 16"},
		{"an unknown mode in node_modes", model("kind", "a", 0, "", "iptables", "ipfw"), "node_modes", `node_modes[1] = "ipfw"`},
		{"an empty node_modes", model("kind", "a", 0, "", []string{}...), "node_modes", "node_modes has 0 entries"},
		{"node_modes beside nodes", model("kind", "a", 2, "", "iptables"), "node_modes", "leave out nodes and mode, or leave out node_modes"},
		{"a name kind refuses", model("kind", "Bad_Name", 2, "iptables"), "", `cluster name "Bad_Name": want 1-32 of [a-z0-9-]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := check(tc.m)
			if len(errs) != 1 || errs[0].attr != tc.attr || !strings.Contains(errs[0].detail, tc.want) {
				t.Fatalf("got %+v, want one error on %q containing %q", errs, tc.attr, tc.want)
			}
		})
	}
}

func TestAGoodClusterPassesAndGetsOneModePerNode(t *testing.T) {
	m := model("kind", "h4-ok", 3, "nftables")
	if errs := check(m); len(errs) != 0 {
		t.Fatalf("refused: %+v", errs)
	}
	spec, err := specOf(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Nodes) != 3 || spec.Nodes[2].Mode != "nftables" || spec.Proxier != "ours" || !spec.Keep {
		t.Fatalf("spec %+v", spec)
	}
	mixed, _ := specOf(model("local", "h4-mix", 0, "", "iptables", "ipvs"))
	if len(mixed.Nodes) != 2 || mixed.Nodes[1].Mode != "ipvs" {
		t.Fatalf("mixed spec %+v", mixed)
	}
	def, _ := specOf(model("kind", "h4-def", 0, ""))
	if len(def.Nodes) != defaultNodes || def.Nodes[0].Mode != defaultMode {
		t.Fatalf("default spec %+v", def)
	}
}
