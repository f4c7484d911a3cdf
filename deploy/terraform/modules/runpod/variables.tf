variable "name" {
  description = "Pod name (letters, digits, '-')."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "The name must be a DNS label: lower-case letters, digits and '-'."
  }
}

variable "gpu_type_id" {
  description = "RunPod GPU type id, e.g. \"NVIDIA A100 80GB PCIe\"."
  type        = string
}

variable "gpu_count" {
  description = "Number of GPUs."
  type        = number
  default     = 1
}

variable "cloud_type" {
  description = "SECURE or COMMUNITY."
  type        = string
  default     = "SECURE"

  validation {
    condition     = contains(["SECURE", "COMMUNITY"], var.cloud_type)
    error_message = "cloud_type must be SECURE or COMMUNITY."
  }
}

variable "image" {
  description = "Runner container image (it has the platform installed and runs `mlops execute`)."
  type        = string
}

variable "container_disk_gb" {
  description = "Container disk in GB."
  type        = number
  default     = 20
}

variable "volume_gb" {
  description = "Pod volume in GB (mounted at volume_mount_path); 0: none."
  type        = number
  default     = 20
}

variable "volume_mount_path" {
  description = "Where the volume is mounted (the Runner's work and cache)."
  type        = string
  default     = "/workspace"
}

variable "ports" {
  description = "Exposed ports, e.g. \"8080/http\"; empty: none."
  type        = string
  default     = ""
}

variable "plan_json" {
  description = "The placed plan the Runner executes (passed base64-encoded in MLOPS_PLAN_B64)."
  type        = string
}

variable "report_to" {
  description = "Gateway URL the Runner reports events to."
  type        = string
}

variable "runner_env" {
  description = "Non-secret environment of the Runner (artifact store URL, deployment name...)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.runner_env) : can(regex("^[A-Z_][A-Z0-9_]{0,127}$", k))])
    error_message = "Environment variable names must be upper-case letters, digits and '_'."
  }
}

variable "run_token" {
  description = "The run's token (MLOPS_RUN_TOKEN), fed by TF_VAR_run_token at provision time."
  type        = string
  sensitive   = true
}

variable "secret_env" {
  description = "Further secret environment of the Runner (artifact store keys), fed by TF_VAR_secret_env."
  type        = map(string)
  sensitive   = true
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.secret_env) : can(regex("^[A-Z_][A-Z0-9_]{0,127}$", k))])
    error_message = "Environment variable names must be upper-case letters, digits and '_'."
  }
}
