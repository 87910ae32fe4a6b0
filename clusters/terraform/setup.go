package terraform

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// ResourceType is our provider's cluster resource.
const ResourceType = "proxyproof_cluster"

// attrClusterProvider is the resource's attribute naming the registry
// provider that makes the cluster.
const attrClusterProvider = "cluster_provider"

// clusterProviders are the registry providers the proxyproof_cluster
// resources of the root module in dir make their clusters with, read
// from its .tf files (HCL; .tf.json modules are read as declaring none).
// A cluster_provider that is not a literal string (a variable, an
// expression) is unknown until apply: it is reported as "", and set-up
// then readies every provider. Modules it calls are not read: a cluster
// declared in a child module is set up by make kind-images or the
// local provider's own set-up, as it would be without terraform.
func clusterProviders(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	schema := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "resource", LabelNames: []string{"type", "name"}}}}
	p := hclparse.NewParser()
	var out []string
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			return nil, fmt.Errorf("TF_DIR=%s: %s does not parse: %s", dir, f, diags.Error())
		}
		// Partial: the file's other blocks (terraform, variable, output)
		// are not this schema's business.
		content, _, _ := file.Body.PartialContent(schema)
		for _, b := range content.Blocks {
			if b.Labels[0] != ResourceType {
				continue
			}
			attrs, _ := b.Body.JustAttributes()
			a, ok := attrs[attrClusterProvider]
			if !ok {
				continue // the resource requires it: apply says so, naming it
			}
			v, d := a.Expr.Value(nil)
			if d.HasErrors() || !v.IsKnown() || v.Type() != cty.String {
				out = append(out, "")
				continue
			}
			out = append(out, v.AsString())
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
