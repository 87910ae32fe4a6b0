package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestAMissingRequiredFieldIsNamedWithItsVariable(t *testing.T) {
	_, err := ProductFromEnv(env(map[string]string{
		"PRODUCT_VENDOR": "Example", "PRODUCT_NAME": "fastproxy", "PRODUCT_VERSION": "1.0",
		"PRODUCT_WEBSITE_URL": "https://example.com", "PRODUCT_TYPE": "distribution",
		"PRODUCT_DESCRIPTION": "A proxy.", "PRODUCT_LOGO_URL": "example.com/logo.svg",
	}))
	if err == nil {
		t.Fatal("a product without documentation_url was accepted")
	}
	for _, want := range []string{"documentation_url is required: set PRODUCT_DOCUMENTATION_URL=", `product_logo_url: PRODUCT_LOGO_URL="example.com/logo.svg" is not an http(s) URL`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "repo_url") {
		t.Errorf("repo_url is optional (open-source products only), yet: %v", err)
	}
}

func TestProductFileFieldsAreOverriddenByVariablesAndTyposRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "product.yaml")
	os.WriteFile(file, []byte("vendor: Example\nname: fastproxy\nversion: '1.0'\nwebsite_url: https://example.com\n"+
		"documentation_url: https://example.com/docs\ntype: distribution\ndescription: A proxy.\n"), 0o644)
	p, err := ProductFromEnv(env(map[string]string{"PRODUCT_FILE": file, "PRODUCT_VERSION": "1.1"}))
	if err != nil || p.Vendor != "Example" || p.Version != "1.1" {
		t.Errorf("ProductFromEnv = %+v, %v", p, err)
	}
	os.WriteFile(file, []byte("vendor: Example\nwebsite: https://example.com\n"), 0o644)
	if _, err := ProductFromEnv(env(map[string]string{"PRODUCT_FILE": file})); err == nil || !strings.Contains(err.Error(), "website") || !strings.Contains(err.Error(), "PRODUCT_FILE="+file) {
		t.Errorf("a typo in PRODUCT_FILE: %v", err)
	}
}
