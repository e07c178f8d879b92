variable "name" {
  description = "Repository name."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images."
  type        = string
}

variable "keep_images" {
  description = "Images kept before lifecycle expiry (rollback depth)."
  type        = number
}
