variable "name" {
  description = "Cluster name (sage-<environment>)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for ECS Exec sessions and their log group."
  type        = string
}

variable "log_retention_days" {
  description = "ECS Exec log retention."
  type        = number
}
