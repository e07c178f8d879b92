variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "vpc_id" {
  description = "VPC the security groups belong to."
  type        = string
}

variable "alb_ingress_cidrs" {
  description = "CIDRs allowed to reach the public ALB."
  type        = list(string)
}

variable "backend_port" {
  description = "Backend container port."
  type        = number
}

variable "sage_ops_enabled" {
  description = "Create the sage_ops security group and its rules."
  type        = bool
}

variable "dagster_ui_allowed_cidrs" {
  description = "CIDRs allowed to reach the Dagster UI's internal ALB (HTTPS)."
  type        = list(string)
}

variable "peer_database_cidrs" {
  description = "Peered VPCs (other environments' stacks) whose PostgreSQL sage_ops tasks reach."
  type        = list(string)
  default     = []
}

variable "peer_sage_ops_name" {
  description = "Name prefix of the stack whose sage_ops tasks reach this RDS through VPC peering (sage-production); null: none."
  type        = string
  default     = null
}

variable "dagster_webserver_port" {
  description = "Dagster webserver port."
  type        = number
  default     = 3000
}

variable "dagster_grpc_port" {
  description = "Dagster code-location gRPC port."
  type        = number
  default     = 4000
}
