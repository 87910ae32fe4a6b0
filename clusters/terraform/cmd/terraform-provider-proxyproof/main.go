// Command terraform-provider-proxyproof is our Terraform/OpenTofu provider
// plugin (clusters/terraform/tfprovider). Terraform starts it; it is
// installed through dev_overrides in a CLI config (see README), never from
// a registry.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/proxyproof/proxyproof/clusters/terraform"
	"github.com/proxyproof/proxyproof/clusters/terraform/tfprovider"
)

// version is the plugin's version as Terraform shows it.
var version = terraform.PluginVersion

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers (TF_REATTACH_PROVIDERS)")
	flag.Parse()
	err := providerserver.Serve(context.Background(), tfprovider.New(version), providerserver.ServeOpts{
		Address: terraform.PluginAddress,
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
