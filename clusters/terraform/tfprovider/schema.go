package tfprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/proxyproof/proxyproof/clusters"
)

// clusterModel is proxyproof_cluster's attributes.
type clusterModel struct {
	ID              types.String `tfsdk:"id"`
	ClusterProvider types.String `tfsdk:"cluster_provider"`
	Name            types.String `tfsdk:"name"`
	Nodes           types.Int64  `tfsdk:"nodes"`
	Mode            types.String `tfsdk:"mode"`
	NodeModes       types.List   `tfsdk:"node_modes"`
	Proxier         types.String `tfsdk:"proxier"`
	Kubeconfig      types.String `tfsdk:"kubeconfig"`
	KubeconfigPath  types.String `tfsdk:"kubeconfig_path"`
	NodeNames       types.List   `tfsdk:"node_names"`
}

// Defaults when the configuration leaves them out.
const (
	defaultNodes = 2
	defaultMode  = clusters.ModeIPTables
)

// A cluster is never changed in place: any change of what it is made of
// is a new cluster.
var replace = []planmodifier.String{stringplanmodifier.RequiresReplace()}

func (r *clusterResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A cluster under test made by proxyproof's local or kind provider, with its proxier deployed on every node. " +
			"It outlives the plugin; destroy brings it down by name (as make cluster-down does).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, Description: "The cluster name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			// "provider" is a meta-argument of every resource block, so the
			// attribute cannot have that name.
			"cluster_provider": schema.StringAttribute{Required: true, PlanModifiers: replace,
				Description: `Who makes the cluster: "local" (network-namespace nodes on this machine) or "kind" (Docker).`},
			"name": schema.StringAttribute{Required: true, PlanModifiers: replace,
				Description: "Cluster name, unique among the provider's clusters on this machine (local: 1-10, kind: 1-32 of [a-z0-9-])."},
			"nodes": schema.Int64Attribute{Optional: true,
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()},
				Description:   "Number of nodes, each running mode (default 2). Leave out when node_modes is set."},
			"mode": schema.StringAttribute{Optional: true, PlanModifiers: replace,
				Description: "Proxier mode of every node: iptables, nftables or ipvs (default iptables). Leave out when node_modes is set."},
			"node_modes": schema.ListAttribute{ElementType: types.StringType, Optional: true, Computed: true,
				PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace()},
				Description:   "Mode of each node in order (a mixed-mode cluster). Computed from nodes and mode when left out."},
			"proxier": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(clusters.ProxierOurs),
				PlanModifiers: replace,
				Description:   `The proxier on every node: "ours", "kube-proxy" (upstream, built from source) or the path of a kube-proxy-compatible binary (local only).`},
			"kubeconfig": schema.StringAttribute{Computed: true, Sensitive: true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Description:   "An admin kubeconfig of the cluster (its content)."},
			"kubeconfig_path": schema.StringAttribute{Computed: true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				Description:   "The path of that kubeconfig on this machine (kept up to date by the provider)."},
			"node_names": schema.ListAttribute{ElementType: types.StringType, Computed: true,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				Description:   "The nodes' names, in the order of node_modes."},
		},
	}
}
