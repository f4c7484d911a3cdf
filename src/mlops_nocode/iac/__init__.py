"""Infrastructure as code: the one Terraform runner class and helpers to render root modules."""
