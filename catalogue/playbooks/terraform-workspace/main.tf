# A workspace for a pipeline: a name, a size and an optional access token, recorded in Terraform state.
# Built only on Terraform's built-in `terraform_data` resource, so it applies with no provider to download;
# replace it with real resources (a bucket, a VM...) and keep the same outputs.

variable "name" {
  type        = string
  description = "The workspace's name."
}

variable "size" {
  type        = number
  default     = 1
  description = "How many workers the workspace holds."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Free-form labels."
}

variable "token" {
  type        = string
  default     = ""
  sensitive   = true
  description = "An access token (reaches terraform only as TF_VAR_token)."
}

resource "terraform_data" "workspace" {
  input = {
    name   = var.name
    size   = var.size
    labels = var.labels
  }
}

resource "terraform_data" "access" {
  triggers_replace = [sha256(var.token)]
}

output "workspace" {
  description = "What later steps need to reach the workspace."
  value = {
    id       = terraform_data.workspace.id
    name     = var.name
    size     = var.size
    labels   = var.labels
    hosts    = ["localhost"]
    has_auth = nonsensitive(var.token != "")
  }
}

output "name" {
  value = var.name
}
