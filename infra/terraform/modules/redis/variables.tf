variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two AZs)."
  type        = list(string)
}

variable "security_group_id" {
  description = "Redis security group."
  type        = string
}

variable "node_type" {
  description = "Node type."
  type        = string
}

variable "num_nodes" {
  description = "Primary + replicas, spread over both AZs."
  type        = number

  validation {
    condition     = var.num_nodes >= 2
    error_message = "Multi-AZ automatic failover needs at least 2 nodes."
  }
}

variable "kms_key_arn" {
  description = "KMS key for data at rest, the slow log and the URL secret."
  type        = string
}

variable "log_retention_days" {
  description = "Slow-log retention."
  type        = number
}
