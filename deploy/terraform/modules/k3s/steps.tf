# Container steps (var.step_jobs): the Runner creates one Job per step attempt, whose container is the
# step's image. It needs a service account allowed to manage Jobs and read pods and their logs in this
# namespace only, and a work volume its step pods mount too (inputs read-only, the output folder).

resource "kubernetes_service_account_v1" "runner" {
  count = var.step_jobs ? 1 : 0

  metadata {
    name      = "runner"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  automount_service_account_token = false
}

resource "kubernetes_role_v1" "steps" {
  count = var.step_jobs ? 1 : 0

  metadata {
    name      = "runner-steps"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  rule {
    api_groups = ["batch"]
    resources  = ["jobs"]
    verbs      = ["create", "get", "list", "watch", "delete"]
  }

  rule {
    api_groups = [""]
    resources  = ["pods", "pods/log"]
    verbs      = ["get", "list", "watch"]
  }
}

resource "kubernetes_role_binding_v1" "steps" {
  count = var.step_jobs ? 1 : 0

  metadata {
    name      = "runner-steps"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.steps[0].metadata[0].name
  }

  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account_v1.runner[0].metadata[0].name
    namespace = kubernetes_namespace_v1.run.metadata[0].name
  }
}

# ReadWriteOnce: the step pods are placed on the Runner's node (K3s's local-path volumes are node-local).
resource "kubernetes_persistent_volume_claim_v1" "work" {
  count = var.step_jobs ? 1 : 0

  metadata {
    name      = "work"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  wait_until_bound = false

  spec {
    access_modes       = ["ReadWriteOnce"]
    storage_class_name = var.storage_class == "" ? null : var.storage_class

    resources {
      requests = {
        storage = var.work_volume_size
      }
    }
  }
}

# Step pods whose section says `network: none` get no traffic in or out.
resource "kubernetes_network_policy_v1" "steps_offline" {
  count = var.step_jobs ? 1 : 0

  metadata {
    name      = "steps-offline"
    namespace = kubernetes_namespace_v1.run.metadata[0].name
    labels    = var.labels
  }

  spec {
    policy_types = ["Ingress", "Egress"]

    pod_selector {
      match_labels = { "mlops-nocode/role" = "step", "mlops-nocode/network" = "none" }
    }
  }
}
