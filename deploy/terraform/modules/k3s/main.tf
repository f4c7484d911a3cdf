# One run on a Kubernetes (K3s) cluster: a namespace, the plan as a ConfigMap, the run token and the step
# secrets as Secrets (write-only: their values never reach the state), a Job running the Runner, and a
# Service when a served model asks for a port.

locals {
  command = concat(
    ["mlops", "execute", "/plan/plan.json"],
    var.deployment == "" ? [] : ["--deployment", var.deployment],
    var.report_to != "" ? ["--report-to", var.report_to] : (var.run_id == "" ? [] : ["--run-id", var.run_id]),
    var.runner_args,
  )
  pod_labels = merge(var.labels, { "mlops-nocode/role" = "runner" })
  pod_fields = {
    MLOPS_K8S_NAMESPACE = "metadata.namespace"
    MLOPS_K8S_POD       = "metadata.name"
    MLOPS_K8S_POD_UID   = "metadata.uid"
    MLOPS_K8S_NODE      = "spec.nodeName"
  }
  resources = merge(
    { cpu = var.cpu, memory = var.memory },
    var.gpu > 0 ? { "nvidia.com/gpu" = tostring(var.gpu) } : {},
  )
}

resource "kubernetes_namespace_v1" "run" {
  metadata {
    name   = var.namespace
    labels = var.labels
  }
}

resource "kubernetes_config_map_v1" "plan" {
  metadata {
    name      = "plan"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  data = {
    "plan.json" = var.plan_json
  }
}

resource "kubernetes_secret_v1" "run_token" {
  metadata {
    name      = "run-token"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  type             = "Opaque"
  data_wo          = { token = var.run_token }
  data_wo_revision = 1
}

resource "kubernetes_secret_v1" "step_secrets" {
  count = length(var.secret_names) > 0 ? 1 : 0

  metadata {
    name      = "step-secrets"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  type             = "Opaque"
  data_wo          = var.step_secrets
  data_wo_revision = 1
}

resource "kubernetes_job_v1" "runner" {
  metadata {
    name      = "runner"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  wait_for_completion = false

  # backoff_limit 0: the Runner retries steps itself; a failed pod is a failed run.
  spec {
    backoff_limit           = 0
    active_deadline_seconds = var.active_deadline_seconds

    template {
      metadata {
        labels = local.pod_labels
      }

      spec {
        restart_policy                  = "Never"
        service_account_name            = var.step_jobs ? kubernetes_service_account_v1.runner[0].metadata[0].name : null
        automount_service_account_token = var.step_jobs
        enable_service_links            = false
        node_selector                   = var.node_selector

        security_context {
          run_as_non_root = true
          run_as_user     = 10001
          run_as_group    = 10001
          fs_group        = 10001

          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "runner"
          image             = var.image
          image_pull_policy = var.image_pull_policy
          command           = local.command

          env {
            name  = "MLOPS_HOME"
            value = "/var/lib/mlops/home"
          }

          env {
            name = "MLOPS_RUN_TOKEN"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.run_token.metadata[0].name
                key  = "token"
              }
            }
          }

          # Container steps: where the Runner is (owner and node of its step Jobs) and its work volume.
          dynamic "env" {
            for_each = var.step_jobs ? local.pod_fields : {}
            content {
              name = env.key
              value_from {
                field_ref {
                  field_path = env.value
                }
              }
            }
          }

          dynamic "env" {
            for_each = var.step_jobs ? { MLOPS_K8S_CLAIM = "work", MLOPS_K8S_SHARED = "/var/lib/mlops" } : {}
            content {
              name  = env.key
              value = env.value
            }
          }

          dynamic "env" {
            for_each = var.secret_names
            content {
              name = env.value
              value_from {
                secret_key_ref {
                  name = "step-secrets"
                  key  = env.value
                }
              }
            }
          }

          resources {
            requests = local.resources
            limits   = local.resources
          }

          dynamic "port" {
            for_each = var.service_port > 0 ? [var.service_port] : []
            content {
              name           = "serve"
              container_port = port.value
            }
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true

            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "plan"
            mount_path = "/plan"
            read_only  = true
          }

          volume_mount {
            name       = "work"
            mount_path = "/var/lib/mlops"
          }

          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "plan"
          config_map {
            name = kubernetes_config_map_v1.plan.metadata[0].name
          }
        }

        volume {
          name = "work"

          dynamic "empty_dir" {
            for_each = var.step_jobs ? [] : [1]
            content {}
          }

          dynamic "persistent_volume_claim" {
            for_each = var.step_jobs ? [1] : []
            content {
              claim_name = kubernetes_persistent_volume_claim_v1.work[0].metadata[0].name
            }
          }
        }

        volume {
          name = "tmp"
          empty_dir {}
        }
      }
    }
  }

  depends_on = [kubernetes_secret_v1.step_secrets, kubernetes_role_binding_v1.steps]
}

resource "kubernetes_service_v1" "serve" {
  count = var.service_port > 0 ? 1 : 0

  metadata {
    name      = "serve"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  spec {
    type     = "ClusterIP"
    selector = local.pod_labels

    port {
      name        = "serve"
      port        = var.service_port
      target_port = "serve"
    }
  }
}

# No ingress to the Runner's pod but to the served model's port (K3s enforces NetworkPolicies with its
# built-in controller). Egress stays open: the Runner reports to the gateway and reads the artifact store.
resource "kubernetes_network_policy_v1" "runner" {
  metadata {
    name      = "runner"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  spec {
    policy_types = ["Ingress"]

    pod_selector {
      match_labels = local.pod_labels
    }

    dynamic "ingress" {
      for_each = var.service_port > 0 ? [var.service_port] : []
      content {
        ports {
          port     = "serve"
          protocol = "TCP"
        }
      }
    }
  }
}
