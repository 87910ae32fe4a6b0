package tfprovider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/providers"
)

// maxNodes bounds nodes: each node is a set of processes (local) or a
// container (kind) on this one machine.
const maxNodes = 16

// clusterProviders are the registry's providers this resource may use:
// the ones that make a cluster on this machine.
var clusterProviders = []string{"local", "kind"}

var modes = []string{clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS}

// attrError is a diagnostic on one attribute.
type attrError struct {
	attr, summary, detail string
}

// check is every check of the configuration that needs no engine (see
// checkStatic), then the provider's own Precheck (cluster name, what this
// kernel can give its nodes). Unknown values (known only at apply) are
// left to Create.
func check(m clusterModel) []attrError {
	errs := checkStatic(m)
	if len(errs) > 0 || !allKnown(m) {
		return errs
	}
	return precheck(m)
}

// checkStatic checks the provider, node count and modes: what no value
// known later and no machine can make right. Only these run at plan
// (ValidateConfig), which runs before a destroy too: a check that depends
// on the machine or on other resources there would block destroying what
// an earlier apply made.
func checkStatic(m clusterModel) []attrError {
	var errs []attrError
	cp := m.ClusterProvider.ValueString()
	if known(m.ClusterProvider) && !slices.Contains(clusterProviders, cp) {
		errs = append(errs, attrError{"cluster_provider", "Unknown cluster provider",
			fmt.Sprintf("cluster_provider = %q: want one of %s.", cp, strings.Join(clusterProviders, ", "))})
	}
	if known(m.Nodes) {
		if n := m.Nodes.ValueInt64(); n < 1 || n > maxNodes {
			errs = append(errs, attrError{"nodes", "Bad node count",
				fmt.Sprintf("nodes = %d: want 1 to %d (the suite needs at least 2 to reach a backend on another node).", n, maxNodes)})
		}
	}
	if !m.NodeModes.IsNull() && (!m.Nodes.IsNull() || !m.Mode.IsNull()) {
		errs = append(errs, attrError{"node_modes", "Conflicting node attributes",
			"node_modes gives each node's mode; leave out nodes and mode, or leave out node_modes."})
	}
	if known(m.Mode) && !slices.Contains(modes, m.Mode.ValueString()) {
		errs = append(errs, attrError{"mode", "Unknown mode",
			fmt.Sprintf("mode = %q: want %s.", m.Mode.ValueString(), strings.Join(modes, ", "))})
	}
	if !m.NodeModes.IsNull() && !m.NodeModes.IsUnknown() {
		errs = append(errs, checkNodeModes(m.NodeModes)...)
	}
	return errs
}

func checkNodeModes(l types.List) []attrError {
	elems := l.Elements()
	if len(elems) < 1 || len(elems) > maxNodes {
		return []attrError{{"node_modes", "Bad node count",
			fmt.Sprintf("node_modes has %d entries: want 1 to %d, one per node.", len(elems), maxNodes)}}
	}
	var errs []attrError
	for i, e := range elems {
		s, ok := e.(types.String)
		if !ok || !known(s) {
			continue
		}
		if !slices.Contains(modes, s.ValueString()) {
			errs = append(errs, attrError{"node_modes", "Unknown mode",
				fmt.Sprintf("node_modes[%d] = %q: want %s.", i, s.ValueString(), strings.Join(modes, ", "))})
		}
	}
	return errs
}

// precheck asks the registry's provider, as make e2e's runner does before
// any set-up.
func precheck(m clusterModel) []attrError {
	spec, err := specOf(m)
	if err != nil {
		return []attrError{{"node_modes", "Bad nodes", err.Error()}}
	}
	p, _ := providers.Get(m.ClusterProvider.ValueString())
	if pc, ok := p.(clusters.Prechecker); ok {
		if err := pc.Precheck(spec); err != nil {
			return []attrError{{"", "Cluster refused by the " + p.Name() + " provider", err.Error()}}
		}
	}
	return nil
}

type knowable interface {
	IsNull() bool
	IsUnknown() bool
}

func known(v knowable) bool { return !v.IsNull() && !v.IsUnknown() }

func allKnown(m clusterModel) bool {
	for _, v := range []knowable{m.ClusterProvider, m.Name, m.Nodes, m.Mode, m.NodeModes, m.Proxier} {
		if v.IsUnknown() {
			return false
		}
	}
	for _, e := range m.NodeModes.Elements() {
		if e.IsUnknown() {
			return false
		}
	}
	return true
}

// nodeModesOf is each node's mode: node_modes, or nodes times mode with
// their defaults.
func nodeModesOf(m clusterModel) ([]string, error) {
	if !m.NodeModes.IsNull() && !m.NodeModes.IsUnknown() {
		var out []string
		for _, e := range m.NodeModes.Elements() {
			s, ok := e.(types.String)
			if !ok {
				return nil, fmt.Errorf("node_modes: %v is not a string", e)
			}
			out = append(out, s.ValueString())
		}
		return out, nil
	}
	n, mode := int64(defaultNodes), defaultMode
	if !m.Nodes.IsNull() {
		n = m.Nodes.ValueInt64()
	}
	if !m.Mode.IsNull() {
		mode = m.Mode.ValueString()
	}
	out := make([]string, n)
	for i := range out {
		out[i] = mode
	}
	return out, nil
}

// specOf is the cluster m declares. Keep: the cluster must outlive the
// plugin process, which Terraform stops after each command.
func specOf(m clusterModel) (clusters.Spec, error) {
	ms, err := nodeModesOf(m)
	if err != nil {
		return clusters.Spec{}, err
	}
	spec := clusters.Spec{Name: m.Name.ValueString(), Proxier: m.Proxier.ValueString(), Keep: true}
	if spec.Proxier == "" {
		spec.Proxier = clusters.ProxierOurs
	}
	for _, mode := range ms {
		spec.Nodes = append(spec.Nodes, clusters.NodeSpec{Mode: mode})
	}
	return spec, nil
}

var (
	_ resource.ResourceWithValidateConfig = &clusterResource{}
	_ resource.ResourceWithModifyPlan     = &clusterResource{}
)

func (r *clusterResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	addErrors(&resp.Diagnostics, checkStatic(m))
}

func addErrors(d *diag.Diagnostics, errs []attrError) {
	for _, e := range errs {
		if e.attr == "" {
			d.AddError(e.summary, e.detail)
			continue
		}
		d.AddAttributeError(path.Root(e.attr), e.summary, e.detail)
	}
}

// ModifyPlan fills in node_modes from nodes and mode, so the plan shows
// every node's mode before anything is made. It refuses nothing: terraform
// destroy plans the configuration normally first, and an error here would
// keep it from destroying what an earlier, failed apply made; the
// provider's own checks run in Create, before anything is made.
func (r *clusterResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var m clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !m.NodeModes.IsUnknown() || m.Nodes.IsUnknown() || m.Mode.IsUnknown() {
		return
	}
	ms, err := nodeModesOf(m)
	if err != nil {
		return
	}
	l, diags := types.ListValueFrom(ctx, types.StringType, ms)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("node_modes"), l)...)
}
