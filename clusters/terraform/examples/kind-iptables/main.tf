# A two-node kind cluster whose nodes run our proxier in iptables mode,
# declared with our proxyproof_cluster resource:
#   make e2e PROVIDER=terraform TF_DIR=clusters/terraform/examples/kind-iptables
terraform {
  required_providers {
    proxyproof = { source = "proxyproof.local/proxyproof/proxyproof" }
  }
}

# make e2e offers name (unique per run) and proxier (PROXIER=).
variable "name" {
  type    = string
  default = "tf-kind-iptables"
}
variable "proxier" {
  type    = string
  default = "ours"
}

resource "proxyproof_cluster" "this" {
  cluster_provider = "kind"
  name             = var.name
  nodes            = 2
  mode             = "iptables"
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
