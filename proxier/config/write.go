package config

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"k8s.io/kube-proxy/config/v1alpha1"
)

// Marshal renders obj as a KubeProxyConfiguration YAML document that Load
// reads back to the same configuration.
func Marshal(obj *v1alpha1.KubeProxyConfiguration) ([]byte, error) {
	out := obj.DeepCopy()
	out.APIVersion, out.Kind = APIVersion, Kind
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("marshal KubeProxyConfiguration: %w", err)
	}
	return b, nil
}

// WriteFile writes the effective configuration (c.Raw) to path, as
// upstream's --write-config-to does; the caller then exits.
func (c *Config) WriteFile(path string) error {
	b, err := Marshal(c.Raw)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write config to %s: %w", path, err)
	}
	return nil
}
