variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets, one per AZ."
  type        = list(string)
}

variable "security_group_id" {
  description = "ALB security group."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate ARN; null serves plain HTTP."
  type        = string
  default     = null
}

variable "target_port" {
  description = "Backend container port."
  type        = number
}

variable "health_check_path" {
  description = "Backend health endpoint."
  type        = string
  default     = "/health"
}

variable "deletion_protection" {
  description = "ALB deletion protection."
  type        = bool
}

variable "access_log_bucket" {
  description = "Bucket receiving ALB access logs."
  type        = string
}

variable "access_log_prefix" {
  description = "Key prefix for ALB access logs."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "WAF log retention."
  type        = number
}
