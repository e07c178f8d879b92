variable "name" {
  description = "Alarm name prefix; must start with \"sage-\" (sage-<environment>)."
  type        = string

  validation {
    condition     = startswith(var.name, "sage-")
    error_message = "Alarm names must start with \"sage-\": sage_ops discovers alarms by that prefix."
  }
}

variable "topic_name" {
  description = "SNS topic every alarm notifies."
  type        = string
}

variable "email_subscriptions" {
  description = "E-mail endpoints subscribed to the topic."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key encrypting the topic."
  type        = string
}

variable "ecs_cluster_name" {
  description = "ClusterName dimension."
  type        = string
}

variable "ecs_service_name" {
  description = "ServiceName dimension."
  type        = string
}

variable "db_instance_identifier" {
  description = "DBInstanceIdentifier dimension."
  type        = string
}

variable "alb_arn_suffix" {
  description = "LoadBalancer dimension (ALB ARN suffix)."
  type        = string
}

variable "db_max_connections" {
  description = "max_connections of the instance."
  type        = number
}

variable "connection_alarm_percent" {
  description = "Alarm when connections exceed this share of max_connections."
  type        = number
  default     = 80
}
