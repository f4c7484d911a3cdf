terraform {
  # Ephemeral input variables (1.10) and write-only arguments (1.11) keep the run token and the step
  # secrets out of the state file.
  required_version = ">= 1.11"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 3.2"
    }
  }
}
