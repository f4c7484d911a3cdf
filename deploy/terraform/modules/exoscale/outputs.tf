output "instance_id" {
  description = "ID of the compute instance."
  value       = exoscale_compute_instance.runner.id
}

output "zone" {
  description = "Zone of the compute instance."
  value       = exoscale_compute_instance.runner.zone
}

output "public_ip" {
  description = "Public IPv4 address of the instance."
  value       = exoscale_compute_instance.runner.public_ip_address
}

output "security_group_id" {
  description = "ID of the instance's security group."
  value       = exoscale_security_group.runner.id
}
