variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "cidr" {
  description = "VPC CIDR block."
  type        = string
}

variable "availability_zones" {
  description = "Two AZ names; one public and one private subnet in each."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 2
    error_message = "The network spans exactly two AZs."
  }
}

variable "single_nat_gateway" {
  description = "Share one NAT gateway between both private subnets."
  type        = bool
}

variable "flow_log_destination_arn" {
  description = "S3 ARN (bucket/prefix/) receiving VPC flow logs."
  type        = string
}
