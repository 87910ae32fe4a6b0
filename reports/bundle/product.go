package bundle

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// ProductInfo is the vendor's part of PRODUCT.yaml: the fields of a
// Kubernetes conformance submission (cncf/k8s-conformance,
// instructions.md), filled from make certify's parameters.
type ProductInfo struct {
	Vendor           string `json:"vendor"`
	Name             string `json:"name"`
	Version          string `json:"version"`
	WebsiteURL       string `json:"website_url"`
	RepoURL          string `json:"repo_url"`
	DocumentationURL string `json:"documentation_url"`
	ProductLogoURL   string `json:"product_logo_url"`
	Type             string `json:"type"`
	Description      string `json:"description"`
}

// ProductField is one PRODUCT.yaml field: its key, the make variable
// that sets it and whether a submission needs it.
type ProductField struct {
	Key, Var, Comment string
	Required, URL     bool
	get               func(*ProductInfo) *string
}

// ProductFields are in PRODUCT.yaml's order. Required as CNCF's
// instructions say: repo_url is for open-source products only and
// product_logo_url falls back to the vendor's logo.
var ProductFields = []ProductField{
	{Key: "vendor", Var: "PRODUCT_VENDOR", Required: true, Comment: "the legal entity certifying", get: func(p *ProductInfo) *string { return &p.Vendor }},
	{Key: "name", Var: "PRODUCT_NAME", Required: true, Comment: "the product", get: func(p *ProductInfo) *string { return &p.Name }},
	{Key: "version", Var: "PRODUCT_VERSION", Required: true, Comment: "the product's version, not Kubernetes'", get: func(p *ProductInfo) *string { return &p.Version }},
	{Key: "website_url", Var: "PRODUCT_WEBSITE_URL", Required: true, URL: true, get: func(p *ProductInfo) *string { return &p.WebsiteURL }},
	{Key: "repo_url", Var: "PRODUCT_REPO_URL", URL: true, Comment: "open-source products", get: func(p *ProductInfo) *string { return &p.RepoURL }},
	{Key: "documentation_url", Var: "PRODUCT_DOCUMENTATION_URL", Required: true, URL: true, get: func(p *ProductInfo) *string { return &p.DocumentationURL }},
	{Key: "product_logo_url", Var: "PRODUCT_LOGO_URL", URL: true, Comment: "SVG, AI or EPS; default the vendor's logo", get: func(p *ProductInfo) *string { return &p.ProductLogoURL }},
	{Key: "type", Var: "PRODUCT_TYPE", Required: true, Comment: "distribution, hosted platform or installer", get: func(p *ProductInfo) *string { return &p.Type }},
	{Key: "description", Var: "PRODUCT_DESCRIPTION", Required: true, Comment: "one sentence", get: func(p *ProductInfo) *string { return &p.Description }},
}

// EnvProductFile names a YAML file with PRODUCT.yaml's keys; the
// PRODUCT_* variables override what it says.
const EnvProductFile = "PRODUCT_FILE"

// Value is the field's value in p.
func (f ProductField) Value(p ProductInfo) string { return *f.get(&p) }

// ProductFromEnv reads the product from PRODUCT_FILE (when set) and the
// PRODUCT_* variables, then checks it: a missing required field or a URL
// that is not one is an error naming the variable to set.
func ProductFromEnv(lookup func(string) (string, bool)) (ProductInfo, error) {
	var p ProductInfo
	if path, ok := lookup(EnvProductFile); ok && path != "" {
		var err error
		if p, err = ReadProductFile(path); err != nil {
			return p, err
		}
	}
	for _, f := range ProductFields {
		if v, ok := lookup(f.Var); ok && strings.TrimSpace(v) != "" {
			*f.get(&p) = strings.TrimSpace(v)
		}
	}
	return p, p.Check()
}

// ReadProductFile reads PRODUCT.yaml's keys from path; an unknown key is
// an error (a typo would otherwise drop a field silently).
func ReadProductFile(path string) (ProductInfo, error) {
	var p ProductInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("%s=%s: %w", EnvProductFile, path, err)
	}
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return p, fmt.Errorf("%s=%s: %w (keys: %s)", EnvProductFile, path, err, productKeys())
	}
	return p, nil
}

// Check names every missing required field and every malformed URL.
func (p ProductInfo) Check() error {
	var errs []error
	for _, f := range ProductFields {
		v := f.Value(p)
		switch {
		case v == "" && f.Required:
			errs = append(errs, fmt.Errorf("PRODUCT.yaml field %s is required: set %s=... (or %s in %s)", f.Key, f.Var, f.Key, EnvProductFile))
		case v != "" && f.URL && !isURL(v):
			errs = append(errs, fmt.Errorf("PRODUCT.yaml field %s: %s=%q is not an http(s) URL", f.Key, f.Var, v))
		case strings.ContainsAny(v, "\n\r"):
			errs = append(errs, fmt.Errorf("PRODUCT.yaml field %s: %s holds a line break; want one line", f.Key, f.Var))
		}
	}
	return errors.Join(errs...)
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func productKeys() string {
	keys := make([]string, len(ProductFields))
	for i, f := range ProductFields {
		keys[i] = f.Key
	}
	return strings.Join(keys, ", ")
}
