variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster running the service."
  type        = string
}

variable "image" {
  description = "Image of Terraform's task-definition revision (repo@sha256:digest)."
  type        = string
  default     = null
}

variable "ecr_repository_arn" {
  description = "Repository the execution role may pull from."
  type        = string
}

variable "cpu" {
  description = "Fargate CPU units per task."
  type        = number
}

variable "memory" {
  description = "Fargate memory (MiB) per task."
  type        = number
}

variable "container_port" {
  description = "Port the backend listens on."
  type        = number
}

variable "desired_count" {
  description = "Tasks in steady state."
  type        = number
}

variable "deployment_minimum_percent" {
  description = "deployment_minimum_healthy_percent."
  type        = number
}

variable "deployment_maximum_percent" {
  description = "deployment_maximum_percent."
  type        = number
}

variable "subnet_ids" {
  description = "Private subnets for the tasks."
  type        = list(string)
}

variable "security_group_id" {
  description = "Backend tasks security group."
  type        = string
}

variable "target_group_arn" {
  description = "ALB target group the tasks register in."
  type        = string
}

variable "environment" {
  description = "Plain environment variables."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variable name -> Secrets Manager ARN (optionally with :json-key::)."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "KMS key of the log group and the secrets."
  type        = string
}

variable "log_retention_days" {
  description = "Log retention."
  type        = number
}
