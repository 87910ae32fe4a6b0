# An apply that fails half way: terraform_data.first is made, then the
# cluster is refused at apply (its name, known only then, is too long for
# kind: "h4-" and a 36-character id).
terraform {
  required_providers {
    proxyproof = { source = "proxyproof.local/proxyproof/proxyproof" }
  }
}
resource "terraform_data" "first" {
  input = "made before the cluster"
}
resource "proxyproof_cluster" "bad" {
  cluster_provider = "kind"
  name             = "h4-${terraform_data.first.id}"
  mode             = "iptables"
}
output "kubeconfig_path" {
  value = proxyproof_cluster.bad.kubeconfig_path
}
