variable "role" {
  description = "\"server\" starts a K3s control plane (single-node cluster); \"agent\" joins one."
  type        = string
  default     = "server"

  validation {
    condition     = contains(["server", "agent"], var.role)
    error_message = "The role must be \"server\" or \"agent\"."
  }
}

variable "k3s_version" {
  description = "The K3s release installed, e.g. v1.31.4+k3s1 (pinned: no \"latest\")."
  type        = string
  default     = "v1.31.4+k3s1"

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+\\+k3s[0-9]+$", var.k3s_version))
    error_message = "The K3s version must look like v1.31.4+k3s1."
  }
}

variable "server_url" {
  description = "For an agent: the server's URL (https://HOST:6443). Ignored for a server."
  type        = string
  default     = ""

  validation {
    condition     = var.server_url == "" || can(regex("^https://[A-Za-z0-9.:\\[\\]-]+(:[0-9]+)?$", var.server_url))
    error_message = "The server URL must be https://HOST[:PORT]."
  }
}

variable "token" {
  description = "The cluster's join token (K3S_TOKEN). Pass it as TF_VAR_token; it is in the user data."
  type        = string
  sensitive   = true
}

variable "node_labels" {
  description = "Kubernetes labels of the node (e.g. the offer id the K3s price sheet names)."
  type        = map(string)
  default     = {}
}

variable "node_taints" {
  description = "Kubernetes taints of the node, as key=value:Effect."
  type        = list(string)
  default     = []
}

variable "gpu" {
  description = "Install the NVIDIA container toolkit and make it K3s's default runtime."
  type        = bool
  default     = false
}

variable "nvidia_device_plugin_version" {
  description = "On a server: the NVIDIA device plugin Helm chart deployed so that pods can ask for nvidia.com/gpu (\"\": none)."
  type        = string
  default     = ""

  validation {
    condition     = var.nvidia_device_plugin_version == "" || can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.nvidia_device_plugin_version))
    error_message = "The device plugin version must look like 0.17.0."
  }
}
