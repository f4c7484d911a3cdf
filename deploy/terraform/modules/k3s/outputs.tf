output "namespace" {
  description = "The run's namespace."
  value       = kubernetes_namespace_v1.run.metadata[0].name
}

output "job" {
  description = "The Runner's Job name."
  value       = kubernetes_job_v1.runner.metadata[0].name
}

output "service" {
  description = "The served model's Service name, or null when no port was asked for."
  value       = var.service_port > 0 ? kubernetes_service_v1.serve[0].metadata[0].name : null
}
