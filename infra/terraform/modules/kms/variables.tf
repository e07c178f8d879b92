variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}
