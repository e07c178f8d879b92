variable "name" {
  description = "Name prefix of this stack (sage-<environment>)."
  type        = string
}

variable "peer_name" {
  description = "Name prefix of the stack that runs sage_ops (sage-production)."
  type        = string
}

variable "vpc_id" {
  description = "This stack's VPC."
  type        = string
}

variable "vpc_cidr" {
  description = "This stack's VPC CIDR; must not overlap the peer's."
  type        = string
}

variable "route_table_ids" {
  description = "This stack's private route tables (where RDS lives)."
  type        = list(string)
}
