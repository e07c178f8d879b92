variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the internal ALB (they reach the identity provider through NAT)."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the UI's internal ALB."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the UI's DNS name."
  type        = string
  nullable    = false
}

variable "oidc" {
  description = "OIDC identity provider of the UI sign-in; client_secret_arn names a Secrets Manager secret holding the client secret as plain text."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
    client_secret_arn      = string
    scope                  = optional(string, "openid email")
  })
  nullable = false
}

variable "session_timeout_s" {
  description = "How long a sign-in lasts before the ALB sends the user to the identity provider again."
  type        = number
  default     = 28800
}

variable "allowed_email_domains" {
  description = "Email domains the gate lets in (empty: any account the identity provider signs in)."
  type        = list(string)
  default     = []
}

variable "admin_emails" {
  description = "Accounts allowed the destructive and production actions."
  type        = list(string)
  default     = []
}

variable "admin_groups" {
  description = "Groups (in groups_claim) allowed the destructive and production actions."
  type        = list(string)
  default     = []
}

variable "groups_claim" {
  description = "User-info claim holding the user's groups."
  type        = string
  default     = "groups"
}

variable "target_port" {
  description = "Port of the webserver (gate) container."
  type        = number
}

variable "health_check_path" {
  description = "The gate's health endpoint (answers without an identity)."
  type        = string
  default     = "/_gate/health"
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
