provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "sage"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
