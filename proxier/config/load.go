package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"k8s.io/kube-proxy/config/v1alpha1"
)

const (
	// APIVersion and Kind are what a config file must declare.
	APIVersion = "kubeproxy.config.k8s.io/v1alpha1"
	Kind       = "KubeProxyConfiguration"
)

// Load reads a KubeProxyConfiguration file (YAML or JSON), decodes it
// strictly and applies upstream's v1alpha1 defaults. Every error names the
// file; field errors name the field path.
func Load(path string) (*v1alpha1.KubeProxyConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	obj, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return obj, nil
}

// Decode is Load without the file: strict decode, then SetDefaults.
//
// Upstream decodes strictly too but falls back to a lenient decode with a
// warning; we do not, because a misspelled field silently left at its
// default is exactly the half-configured daemon this package exists to stop.
func Decode(data []byte) (*v1alpha1.KubeProxyConfiguration, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("is empty; it needs at least apiVersion: " + APIVersion + " and kind: " + Kind)
	}
	// Pass 1 (YAML node tree): syntax, duplicate fields, line numbers.
	lines, errs, err := scanYAML(data)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// Pass 2: the same YAML-to-JSON conversion upstream's decoder uses,
	// then a typed walk that reports every unknown or mistyped field.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	top, ok := generic.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a YAML mapping or JSON object with apiVersion: %s and kind: %s, not %s", APIVersion, Kind, describe(generic))
	}
	if errs := checkTypeMeta(top, lines); len(errs) > 0 {
		return nil, errs
	}
	if errs := checkFields(top, lines); len(errs) > 0 {
		return nil, errs
	}
	// Pass 3: the real decode, strict, as a backstop for anything the walk
	// above let through.
	obj := &v1alpha1.KubeProxyConfiguration{}
	strictErrs, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("decode: %w", errors.Join(strictErrs...))
	}
	SetDefaults(obj)
	return obj, nil
}

func checkTypeMeta(top map[string]any, lines map[string]int) ErrorList {
	var errs ErrorList
	check := func(field, want string) {
		switch got, ok := top[field]; {
		case !ok || got == nil || got == "":
			errs = append(errs, FieldError{Message: fmt.Sprintf("%s is missing; set %s: %s", field, field, want)})
		case got != want:
			errs = append(errs, FieldError{Line: lines[field], Message: fmt.Sprintf("%s %s is not supported; this proxier reads %s: %s", field, quote(got), field, want)})
		}
	}
	check("apiVersion", APIVersion)
	check("kind", Kind)
	return errs
}
