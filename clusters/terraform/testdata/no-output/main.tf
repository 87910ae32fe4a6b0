# A module that makes something but gives no kubeconfig output.
variable "name" {
  type    = string
  default = "x"
}
resource "terraform_data" "endpoint" {
  input = var.name
}
output "endpoint" {
  value = terraform_data.endpoint.output
}
