variable "name" {
  description = "Bucket name (globally unique)."
  type        = string
}

variable "expiration_days" {
  description = "Days to keep log objects."
  type        = number
}
