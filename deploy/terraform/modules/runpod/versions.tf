terraform {
  required_version = ">= 1.5.0"

  required_providers {
    runpod = {
      source  = "runpod/runpod"
      version = "~> 1.0"
    }
  }
}
