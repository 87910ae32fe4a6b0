// Package config turns the kube-proxy command line and KubeProxyConfiguration
// file (kubeproxy.config.k8s.io/v1alpha1) into one validated Config the
// daemon runs from. It must never hand out a half-checked configuration:
// every problem is reported, at once, naming the field and the fix.
package config
