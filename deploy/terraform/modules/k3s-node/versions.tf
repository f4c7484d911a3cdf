terraform {
  # No provider: this module only renders cloud-init user data, to hand to any cloud's VM resource.
  required_version = ">= 1.5"
}
