package tfprovider

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/proxyproof/proxyproof/clusters"
	"github.com/proxyproof/proxyproof/clusters/kind"
	"github.com/proxyproof/proxyproof/clusters/local"
	"github.com/proxyproof/proxyproof/clusters/providers"
)

type clusterResource struct {
	// ops are how each provider's clusters are found and brought down by
	// name; a field so tests can fake them.
	ops map[string]byName
}

// byName is what Read and Delete need of a provider: a cluster made by
// an earlier plugin process is known only by its name.
type byName struct {
	exists func(name string) bool
	down   func(ctx context.Context, name string) error
}

var registryOps = map[string]byName{
	"local": {exists: local.Exists, down: local.Destroy},
	"kind": {
		exists: func(name string) bool { _, err := kind.NewProvider().Open(name); return err == nil },
		down:   func(ctx context.Context, name string) error { return kind.NewProvider().Down(ctx, name) },
	},
}

var _ resource.Resource = &clusterResource{}

func newClusterResource() resource.Resource { return &clusterResource{ops: registryOps} }

func (r *clusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
}

// Create makes the cluster through the registry's provider. A cluster of
// that name that exists already is someone else's: refused, untouched.
// A failed create removes what it made, so the resource is either there
// whole or not at all.
func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m, cfg clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Values known only now; the configuration, whose node_modes is what
	// the user wrote (the plan's is computed).
	addErrors(&resp.Diagnostics, check(cfg))
	if resp.Diagnostics.HasError() {
		return
	}
	name, pname := m.Name.ValueString(), m.ClusterProvider.ValueString()
	spec, err := specOf(cfg)
	if err != nil {
		resp.Diagnostics.AddError("Bad nodes", err.Error())
		return
	}
	p, _ := providers.Get(pname)
	ops := r.ops[pname]
	if ops.exists(name) {
		resp.Diagnostics.AddError("Cluster exists",
			fmt.Sprintf("a %s cluster named %q exists already and is not this resource's: choose another name, or remove it with make cluster-down PROVIDER=%s NAME=%s", pname, name, pname, name))
		return
	}
	if err := p.Check(spec); err != nil {
		resp.Diagnostics.AddError("Cluster refused by the "+pname+" provider", fmt.Sprintf("cluster %s: %v", name, err))
		return
	}
	c, err := p.Create(ctx, spec)
	if err != nil {
		detail := fmt.Sprintf("cluster %s: %v", name, err)
		if derr := ops.down(context.WithoutCancel(ctx), name); derr != nil {
			detail += fmt.Sprintf("\nremoving what was made failed too: %v (make cluster-down PROVIDER=%s NAME=%s)", derr, pname, name)
		}
		resp.Diagnostics.AddError("Cluster create failed", detail)
		return
	}
	if err := fill(ctx, &m, c); err != nil {
		resp.Diagnostics.AddError("Cluster made, kubeconfig unreadable", err.Error())
		// Still in state: destroy removes it.
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// fill sets the computed attributes from the running cluster.
func fill(ctx context.Context, m *clusterModel, c clusters.Cluster) error {
	var modes, names []string
	for _, n := range c.Nodes() {
		modes = append(modes, n.Mode)
		names = append(names, n.Name)
	}
	m.ID = types.StringValue(c.Name())
	m.NodeModes, _ = types.ListValueFrom(ctx, types.StringType, modes)
	m.NodeNames, _ = types.ListValueFrom(ctx, types.StringType, names)
	m.KubeconfigPath = types.StringValue(c.Kubeconfig())
	b, err := os.ReadFile(c.Kubeconfig())
	if err != nil {
		m.Kubeconfig = types.StringValue("")
		return fmt.Errorf("cluster %s: %w", c.Name(), err)
	}
	m.Kubeconfig = types.StringValue(string(b))
	return nil
}

// Read drops a cluster that is gone (make cluster-down, a reboot) from the
// state, so the next apply makes it again; it refreshes the kubeconfig.
func (r *clusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ops, ok := r.ops[m.ClusterProvider.ValueString()]
	if !ok || !ops.exists(m.Name.ValueString()) {
		resp.State.RemoveResource(ctx)
		return
	}
	if b, err := os.ReadFile(m.KubeconfigPath.ValueString()); err == nil {
		m.Kubeconfig = types.StringValue(string(b))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// Update is never called: every attribute replaces the cluster.
func (r *clusterResource) Update(_ context.Context, _ resource.UpdateRequest, resp *resource.UpdateResponse) {
	resp.Diagnostics.AddError("Cluster cannot change in place", "every attribute of proxyproof_cluster replaces the cluster; this is a bug in the provider")
}

// Delete brings the cluster down by name, as make cluster-down does, also
// when this process did not make it.
func (r *clusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pname, name := m.ClusterProvider.ValueString(), m.Name.ValueString()
	ops, ok := r.ops[pname]
	if !ok {
		resp.Diagnostics.AddError("Unknown cluster provider", fmt.Sprintf("cluster %s: cluster_provider %q in the state", name, pname))
		return
	}
	// Down must finish even if Terraform is interrupted: a half-removed
	// cluster is worse than a slow Ctrl-C.
	if err := ops.down(context.WithoutCancel(ctx), name); err != nil {
		resp.Diagnostics.AddError("Cluster destroy failed", fmt.Sprintf("cluster %s (%s): %v; make cluster-down PROVIDER=%s NAME=%s retries", name, pname, err, pname, name))
	}
}
