# The shape of a module for your own cluster: whatever makes it (your
# cloud's resources, a module of yours), PROVIDER=terraform needs only
# these outputs. Here the cluster exists already and the module only
# reads its kubeconfig path:
#   make e2e PROVIDER=terraform TF_DIR=clusters/terraform/examples/own-cluster \
#     TF_VARS=kubeconfig_path=$HOME/.kube/config,node_mode=iptables
# Required: kubeconfig (content) or kubeconfig_path (a path on this
# machine). Optional: kubeconfig_context, node_modes (node name -> mode,
# or a list in node order).

variable "kubeconfig_path" {
  type        = string
  description = "An admin kubeconfig of the cluster under test."
}
variable "context" {
  type    = string
  default = ""
}
variable "node_mode" {
  type        = string
  default     = "iptables"
  description = "The mode every node's proxier runs; the suite's census checks it."
}
# make e2e offers these; a module may ignore them.
variable "name" {
  type    = string
  default = ""
}
variable "proxier" {
  type    = string
  default = ""
}

output "kubeconfig_path" {
  value = var.kubeconfig_path
}
output "kubeconfig_context" {
  value = var.context
}
output "node_modes" {
  value = [var.node_mode]
}
