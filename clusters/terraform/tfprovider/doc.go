// Package tfprovider is our Terraform/OpenTofu provider (plugin framework):
// a proxyproof_cluster resource that makes a local or kind cluster through
// the clusters/providers registry, so the cluster under test can be
// declared in HCL. The cluster outlives the plugin process (Keep); Delete
// brings it down by name as make cluster-down does. It never makes a
// cluster of another kind than the registry's local and kind.
package tfprovider
