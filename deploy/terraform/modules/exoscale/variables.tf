variable "name" {
  description = "Name of the instance, security group and SSH key (letters, digits, '-')."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "The name must be a DNS label: lower-case letters, digits and '-'."
  }
}

variable "zone" {
  description = "Exoscale zone, e.g. ch-gva-2, de-fra-1, at-vie-2."
  type        = string
}

variable "instance_type" {
  description = "Instance type as <family>.<size>, e.g. standard.medium or gpua5000.small."
  type        = string
}

variable "disk_size" {
  description = "Root disk size in GiB (at least 10)."
  type        = number
  default     = 50
}

variable "template_name" {
  description = "Public template (OS image) to boot."
  type        = string
  default     = "Linux Ubuntu 24.04 LTS 64-bit"
}

variable "ssh_public_key" {
  description = "SSH public key to authorize; empty: no key is registered."
  type        = string
  default     = ""
}

variable "ssh_cidr" {
  description = "CIDR allowed to reach SSH (port 22); empty: no SSH ingress rule."
  type        = string
  default     = ""
}

variable "serve_port" {
  description = "TCP port opened for a served model; 0: none."
  type        = number
  default     = 0
}

variable "serve_cidr" {
  description = "CIDR allowed to reach serve_port."
  type        = string
  default     = "0.0.0.0/0"
}

variable "labels" {
  description = "Labels set on the instance."
  type        = map(string)
  default     = {}
}

variable "plan_json" {
  description = "The placed plan the Runner executes (written to /opt/mlops/plan.json, gzip+base64 in user-data)."
  type        = string
}

variable "report_to" {
  description = "Gateway URL the Runner reports events to."
  type        = string
}

variable "gpu_driver" {
  description = "Install the NVIDIA driver at boot when the template has none (GPU instance types)."
  type        = bool
  default     = false
}

variable "runner_image" {
  description = "Runner container image; empty: the platform is installed with pip (pip_spec)."
  type        = string
  default     = ""
}

variable "pip_spec" {
  description = "pip requirement installing the platform when runner_image is empty."
  type        = string
  default     = "mlops-nocode"
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
