# Turns a fresh Debian/Ubuntu VM into a K3s node through cloud-init. Every value reaches the VM through
# yamlencode (YAML-escaped) and commands run in exec form (no shell parses a user-given value).

locals {
  k3s_config = merge(
    { token = var.token, "write-kubeconfig-mode" = "0600" },
    var.role == "agent" ? { server = var.server_url } : {},
    length(var.node_labels) > 0 ? { "node-label" = [for k, v in var.node_labels : "${k}=${v}"] } : {},
    length(var.node_taints) > 0 ? { "node-taint" = var.node_taints } : {},
    var.gpu ? { "default-runtime" = "nvidia" } : {},
  )

  device_plugin = {
    apiVersion = "helm.cattle.io/v1"
    kind       = "HelmChart"
    metadata   = { name = "nvidia-device-plugin", namespace = "kube-system" }
    spec = {
      repo            = "https://nvidia.github.io/k8s-device-plugin"
      chart           = "nvidia-device-plugin"
      version         = var.nvidia_device_plugin_version
      targetNamespace = "kube-system"
    }
  }

  gpu_commands = var.gpu ? [
    ["sh", "-c", "curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"],
    ["sh", "-c", "curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list | sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list"],
    ["apt-get", "update"],
    ["apt-get", "install", "-y", "nvidia-container-toolkit"],
  ] : []

  write_files = concat(
    [{
      path        = "/etc/rancher/k3s/config.yaml"
      permissions = "0600"
      owner       = "root:root"
      content     = yamlencode(local.k3s_config)
    }],
    var.role == "server" && var.nvidia_device_plugin_version != "" ? [{
      path        = "/var/lib/rancher/k3s/server/manifests/nvidia-device-plugin.yaml"
      permissions = "0600"
      owner       = "root:root"
      content     = yamlencode(local.device_plugin)
    }] : [],
  )

  cloud_config = {
    package_update = true
    packages       = ["curl", "ca-certificates", "gnupg"]
    write_files    = local.write_files
    runcmd = concat(local.gpu_commands, [
      ["curl", "-sfL", "https://get.k3s.io", "-o", "/tmp/k3s-install.sh"],
      ["env", "INSTALL_K3S_VERSION=${var.k3s_version}", "INSTALL_K3S_EXEC=${var.role}", "sh", "/tmp/k3s-install.sh"],
    ])
  }
}
