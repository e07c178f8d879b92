variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, ...)."
  type        = string
  default     = "aws"
}

variable "subnet_ids" {
  description = "Private subnets (two AZs)."
  type        = list(string)
}

variable "security_group_id" {
  description = "RDS security group."
  type        = string
}

variable "instance_class" {
  description = "Instance class."
  type        = string
}

variable "allocated_storage" {
  description = "Initial storage (GiB)."
  type        = number
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
}

variable "multi_az" {
  description = "Multi-AZ standby."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Automated backup retention (days)."
  type        = number
}

variable "deletion_protection" {
  description = "Deletion protection."
  type        = bool
  default     = true
}

variable "max_connections" {
  description = "PostgreSQL max_connections."
  type        = number
}

variable "database_name" {
  description = "Application database."
  type        = string
  default     = "sage"
}

variable "username" {
  description = "Master user (used by the backend and its Prisma migrations)."
  type        = string
  default     = "sage"
}

variable "connection_limit" {
  description = "Prisma connection_limit written into the backend's DATABASE_URL."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights, logs and secrets."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL logs."
  type        = number
}
