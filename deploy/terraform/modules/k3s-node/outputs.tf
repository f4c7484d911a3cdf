output "cloud_init" {
  description = "The cloud-init user data (#cloud-config) for the VM; holds the join token."
  value       = "#cloud-config\n${yamlencode(local.cloud_config)}"
  sensitive   = true
}
