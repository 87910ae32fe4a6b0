// Package terraform is PROVIDER=terraform: it runs a Terraform/OpenTofu
// root module (TF_DIR) with terraform-exec (init, apply, output, destroy),
// reads the cluster's kubeconfig from the module's outputs and hands the
// cluster to the kubeconfig provider. Plugins come only from our build and
// a filesystem mirror through a generated CLI config: it never asks a
// registry, and it never writes into TF_DIR (state, plugin data and log
// live in the run directory).
package terraform
