# A mode the provider does not know: refused at plan, nothing made.
terraform {
  required_providers {
    proxyproof = { source = "proxyproof.local/proxyproof/proxyproof" }
  }
}
resource "proxyproof_cluster" "bad" {
  cluster_provider = "kind"
  name             = "h4-badmode"
  mode             = "ipvx"
  nodes            = 0
}
output "kubeconfig_path" {
  value = proxyproof_cluster.bad.kubeconfig_path
}
