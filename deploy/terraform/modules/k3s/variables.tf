variable "namespace" {
  description = "Namespace created for this run (a DNS-1123 label); everything else lives in it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters."
  }
}

variable "labels" {
  description = "Labels put on every object (app.kubernetes.io/* and mlops-nocode/* keys)."
  type        = map(string)
  default     = {}
}

variable "image" {
  description = "The runner image: it has the platform installed and runs `mlops execute`."
  type        = string
}

variable "image_pull_policy" {
  description = "Always, IfNotPresent or Never."
  type        = string
  default     = "IfNotPresent"
}

variable "plan_json" {
  description = "The placed plan (JSON) the Runner executes; mounted read-only at /plan/plan.json."
  type        = string
}

variable "deployment" {
  description = "The deployment whose steps this Runner runs (`mlops execute --deployment`); empty: the whole plan."
  type        = string
  default     = ""
}

variable "run_id" {
  description = "The run's id, passed as --run-id when there is no report_to (with it, the run token names the run)."
  type        = string
  default     = ""
}

variable "runner_args" {
  description = "Extra arguments of `mlops execute` (no shell is involved)."
  type        = list(string)
  default     = []
}

variable "report_to" {
  description = "Gateway URL the Runner reports to; empty: the Runner reports to its log only."
  type        = string
  default     = ""
}

variable "cpu" {
  description = "CPU request and limit of the Runner's container (Kubernetes quantity)."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory request and limit of the Runner's container (Kubernetes quantity)."
  type        = string
  default     = "1Gi"
}

variable "gpu" {
  description = "Number of nvidia.com/gpu requested (0: none). Needs the NVIDIA device plugin on the nodes."
  type        = number
  default     = 0
}

variable "node_selector" {
  description = "Node labels the Runner's pod must match (e.g. the node size the offer names)."
  type        = map(string)
  default     = {}
}

variable "active_deadline_seconds" {
  description = "Seconds the Job may run before Kubernetes stops it; null: no limit."
  type        = number
  default     = null
}

variable "service_port" {
  description = "Port of a served model; above 0 a ClusterIP Service named `serve` exposes it."
  type        = number
  default     = 0
}

variable "secret_names" {
  description = "Names of the step secrets; each becomes an environment variable read from the `step-secrets` Secret."
  type        = list(string)
  default     = []
}

variable "run_token" {
  description = "The run's token (MLOPS_RUN_TOKEN). Pass it as TF_VAR_run_token; never stored in state."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "step_secrets" {
  description = "Values of the step secrets by name. Pass them as TF_VAR_step_secrets; never stored in state."
  type        = map(string)
  default     = {}
  sensitive   = true
  ephemeral   = true
}

variable "step_jobs" {
  description = "Whether the Runner runs container steps as Jobs of their own: a service account (jobs, pods, pods/log in this namespace), a work volume shared with the step pods."
  type        = bool
  default     = false
}

variable "work_volume_size" {
  description = "Size of the Runner's work volume when step_jobs is set (a Kubernetes quantity)."
  type        = string
  default     = "20Gi"
}

variable "storage_class" {
  description = "Storage class of the work volume; empty: the cluster's default (K3s: local-path)."
  type        = string
  default     = ""
}
