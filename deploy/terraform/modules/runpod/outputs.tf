output "pod_id" {
  description = "ID of the pod."
  value       = runpod_pod.runner.id
}

output "cost_per_hr" {
  description = "What RunPod charges for the pod per hour (USD)."
  value       = runpod_pod.runner.cost_per_hr
}
