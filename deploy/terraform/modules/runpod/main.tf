# One RunPod pod running the platform's Runner image on a placed plan.
#
# User values (plan, URLs, environment) reach the pod only as environment values; the start command is
# constant text that decodes the plan and starts the Runner. The run token comes from a sensitive variable.

locals {
  start_command = <<-EOT
    set -eu
    printf '%s' "$MLOPS_PLAN_B64" | base64 -d > /tmp/mlops-plan.json
    unset MLOPS_PLAN_B64
    code=0
    mlops execute /tmp/mlops-plan.json --deployment "$MLOPS_DEPLOYMENT" --report-to "$MLOPS_REPORT_TO" || code=$?
    echo "mlops execute ended with status $code" > /tmp/mlops-runner-exit
    # RunPod restarts a pod whose command ends: wait here until the deployment is destroyed.
    exec sleep infinity
  EOT

  env = merge(
    var.runner_env,
    var.secret_env,
    {
      MLOPS_PLAN_B64  = base64encode(var.plan_json)
      MLOPS_REPORT_TO = var.report_to
      MLOPS_RUN_TOKEN = var.run_token
      MLOPS_HOLD      = "1"
    },
  )
}

resource "runpod_pod" "runner" {
  name                 = var.name
  image_name           = var.image
  gpu_type_id          = var.gpu_type_id
  gpu_count            = var.gpu_count
  cloud_type           = var.cloud_type
  container_disk_in_gb = var.container_disk_gb
  volume_in_gb         = var.volume_gb
  volume_mount_path    = var.volume_mount_path
  ports                = var.ports == "" ? null : var.ports
  env                  = [for k, v in local.env : "${k}=${v}"]
  docker_start_cmd     = ["/bin/sh", "-c", local.start_command]
}
