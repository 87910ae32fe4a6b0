# A three-node kind cluster in mixed modes (a mode switch half rolled
# out): node_modes gives each node's mode in order.
#   make e2e PROVIDER=terraform TF_DIR=clusters/terraform/examples/mixed MODE=nftables
terraform {
  required_providers {
    proxyproof = { source = "proxyproof.local/proxyproof/proxyproof" }
  }
}

variable "name" {
  type    = string
  default = "tf-mixed"
}
variable "proxier" {
  type    = string
  default = "ours"
}

resource "proxyproof_cluster" "this" {
  cluster_provider = "kind"
  name             = var.name
  node_modes       = ["iptables", "nftables", "nftables"]
  proxier          = var.proxier
}

output "kubeconfig_path" {
  value = proxyproof_cluster.this.kubeconfig_path
}
output "node_modes" {
  value = zipmap(proxyproof_cluster.this.node_names, proxyproof_cluster.this.node_modes)
}
output "cluster_provider" {
  value = proxyproof_cluster.this.cluster_provider
}
output "cluster_name" {
  value = proxyproof_cluster.this.name
}
