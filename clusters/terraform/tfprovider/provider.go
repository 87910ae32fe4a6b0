package tfprovider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"

	"github.com/proxyproof/proxyproof/clusters/terraform"
)

type proxyproofProvider struct{ version string }

var _ provider.Provider = &proxyproofProvider{}

// New is the provider for providerserver.Serve.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &proxyproofProvider{version: version} }
}

func (p *proxyproofProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = terraform.PluginType
	resp.Version = p.version
}

// Schema is empty: everything a cluster needs is on the resource.
func (p *proxyproofProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{Description: "Clusters under test for proxyproof's conformance suite (local network-namespace nodes or kind)."}
}

func (p *proxyproofProvider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

func (p *proxyproofProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newClusterResource}
}

func (p *proxyproofProvider) DataSources(context.Context) []func() datasource.DataSource {
	return nil
}
