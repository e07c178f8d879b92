variable "name" {
  description = "Bucket name (globally unique)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for default encryption."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving S3 server access logs."
  type        = string
}

variable "access_log_prefix" {
  description = "Key prefix for S3 server access logs in the log bucket."
  type        = string
}

variable "backup_prefix" {
  description = "Key prefix sage_ops writes backups under."
  type        = string
  default     = "backups/"
}

variable "compute_log_prefix" {
  description = "Key prefix of Dagster compute logs."
  type        = string
  default     = "dagster/compute-logs/"
}

variable "backup_expiration_days" {
  description = "Backups older than this expire even if sage_ops retention never ran."
  type        = number
}

variable "noncurrent_days" {
  description = "Days a deleted or overwritten object stays recoverable."
  type        = number
  default     = 30
}

variable "compute_log_expiration_days" {
  description = "Days to keep Dagster compute logs."
  type        = number
  default     = 90
}
