// Command tfplugin installs our Terraform/OpenTofu provider for use by
// hand (make terraform-provider): it builds the plugin from this checkout
// into DIR and writes DIR/cli.tfrc, a CLI config that takes our provider
// from there and every other provider from the filesystem mirror, never
// from a registry. It prints the export line for TF_CLI_CONFIG_FILE.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/proxyproof/proxyproof/clusters/terraform"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tfplugin DIR")
		os.Exit(2)
	}
	dir, err := filepath.Abs(os.Args[1])
	if err == nil {
		var cfg string
		if cfg, err = terraform.BuildPlugin(context.Background(), dir); err == nil {
			fmt.Fprintf(os.Stderr, "provider %s built into %s; other providers come from the mirror %s\n",
				terraform.PluginAddress, filepath.Join(dir, "plugins"), terraform.MirrorDir())
			fmt.Printf("export TF_CLI_CONFIG_FILE=%s\n", cfg)
			return
		}
	}
	fmt.Fprintf(os.Stderr, "tfplugin: %v\n", err)
	os.Exit(1)
}
