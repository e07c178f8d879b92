terraform {
  # 1.10: S3 backend native locking (use_lockfile) and cross-variable validation.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.8"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: bucket/key come from environments/<env>.s3.tfbackend so that
  # staging and production never share a state file.
  backend "s3" {}
}
