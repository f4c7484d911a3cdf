# One Exoscale compute instance running the platform's Runner on a placed plan.
#
# Every value that comes from users (plan, URLs, image, environment) reaches the instance only as the
# base64 content of a root-only file written by cloud-init (write_files); the scripts below are
# constant text. The run token and other secrets come from sensitive variables.

locals {
  env_files = merge(
    var.runner_env,
    {
      MLOPS_REPORT_TO    = var.report_to
      MLOPS_RUNNER_IMAGE = var.runner_image
      MLOPS_PIP_SPEC     = var.pip_spec
      MLOPS_GPU_DRIVER   = var.gpu_driver ? "1" : "0"
    },
  )

  start_script = <<-EOT
    #!/bin/bash
    # Starts the Runner: reads its environment from /etc/mlops/env (one root-only file per variable).
    set -eu
    names=()
    for f in /etc/mlops/env/* /etc/mlops/secret/*; do
      [ -f "$f" ] || continue
      n="$(basename "$f")"
      export "$n=$(cat "$f")"
      names+=(--env "$n")
    done
    # Only root may reach the metadata server (user-data holds the run token).
    iptables -C OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT 2>/dev/null \
      || iptables -A OUTPUT -d 169.254.169.254 -m owner ! --uid-owner 0 -j REJECT
    if [ "$MLOPS_GPU_DRIVER" = 1 ] && ! command -v nvidia-smi >/dev/null; then
      apt-get update -q && apt-get install -y -q ubuntu-drivers-common && ubuntu-drivers install --gpgpu
      apt-get install -y -q nvidia-utils-server 2>/dev/null || true
      modprobe nvidia || true
    fi
    id mlops >/dev/null 2>&1 || useradd --system --create-home mlops
    chown mlops /opt/mlops
    if [ -n "$MLOPS_RUNNER_IMAGE" ]; then
      command -v docker >/dev/null || { apt-get update -q && apt-get install -y -q docker.io; }
      docker pull -- "$MLOPS_RUNNER_IMAGE"
      exec docker run --rm --network host "$${names[@]}" -v /opt/mlops:/opt/mlops -- "$MLOPS_RUNNER_IMAGE" \
        mlops execute /opt/mlops/plan.json --deployment "$MLOPS_DEPLOYMENT" --report-to "$MLOPS_REPORT_TO"
    fi
    command -v python3 >/dev/null && python3 -m venv --help >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q python3-venv; }
    [ -x /opt/mlops/venv/bin/mlops ] || { python3 -m venv /opt/mlops/venv && /opt/mlops/venv/bin/pip install -q -- "$MLOPS_PIP_SPEC"; }
    exec setpriv --reuid=mlops --regid=mlops --init-groups -- /opt/mlops/venv/bin/mlops execute /opt/mlops/plan.json --deployment "$MLOPS_DEPLOYMENT" --report-to "$MLOPS_REPORT_TO"
  EOT

  unit = <<-EOT
    [Unit]
    Description=MLOps No-Code Runner
    After=network-online.target
    Wants=network-online.target

    [Service]
    Type=simple
    ExecStart=/opt/mlops/start.sh
    # The instance stops when the Runner ends, so its status says so (the deployment is then destroyed).
    ExecStopPost=/bin/systemctl --no-block poweroff
    Restart=no

    [Install]
    WantedBy=multi-user.target
  EOT

  cloud_config = {
    write_files = concat(
      [
        { path = "/opt/mlops/plan.json", encoding = "gz+b64", content = base64gzip(var.plan_json), permissions = "0644" },
        { path = "/opt/mlops/start.sh", encoding = "b64", content = base64encode(local.start_script), permissions = "0700" },
        { path = "/etc/systemd/system/mlops-runner.service", encoding = "b64", content = base64encode(local.unit), permissions = "0644" },
        { path = "/etc/mlops/secret/MLOPS_RUN_TOKEN", encoding = "b64", content = base64encode(var.run_token), permissions = "0600" },
      ],
      [for k, v in local.env_files : { path = "/etc/mlops/env/${k}", encoding = "b64", content = base64encode(v), permissions = "0600" }],
      [for k, v in var.secret_env : { path = "/etc/mlops/secret/${k}", encoding = "b64", content = base64encode(v), permissions = "0600" }],
    )
    runcmd = [
      ["systemctl", "daemon-reload"],
      ["systemctl", "start", "--no-block", "mlops-runner.service"],
    ]
  }
}

data "exoscale_template" "os" {
  zone = var.zone
  name = var.template_name
}

resource "exoscale_security_group" "runner" {
  name        = var.name
  description = "MLOps No-Code Runner ${var.name}"
}

resource "exoscale_security_group_rule" "ssh" {
  count             = var.ssh_cidr == "" ? 0 : 1
  security_group_id = exoscale_security_group.runner.id
  type              = "INGRESS"
  protocol          = "TCP"
  cidr              = var.ssh_cidr
  start_port        = 22
  end_port          = 22
  description       = "SSH"
}

resource "exoscale_security_group_rule" "serve" {
  count             = var.serve_port == 0 ? 0 : 1
  security_group_id = exoscale_security_group.runner.id
  type              = "INGRESS"
  protocol          = "TCP"
  cidr              = var.serve_cidr
  start_port        = var.serve_port
  end_port          = var.serve_port
  description       = "served model"
}

resource "exoscale_ssh_key" "runner" {
  count      = var.ssh_public_key == "" ? 0 : 1
  name       = var.name
  public_key = var.ssh_public_key
}

resource "exoscale_compute_instance" "runner" {
  zone               = var.zone
  name               = var.name
  type               = var.instance_type
  template_id        = data.exoscale_template.os.id
  disk_size          = var.disk_size
  security_group_ids = [exoscale_security_group.runner.id]
  ssh_keys           = [for k in exoscale_ssh_key.runner : k.name]
  labels             = var.labels
  user_data          = "#cloud-config\n${yamlencode(local.cloud_config)}"

  timeouts {
    create = "30m"
    delete = "15m"
  }
}
