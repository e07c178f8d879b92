# Run once per account, with local state, before the main stack: the S3 bucket that holds every
# environment's Terraform state. Locking uses S3 conditional writes (use_lockfile), so no
# DynamoDB table is needed.

terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.8"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { Project = "sage", ManagedBy = "terraform", Stack = "bootstrap" }
  }
}

variable "region" {
  description = "Region of the state bucket."
  type        = string
  default     = "us-west-2"
}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "key_policy" {
  #checkov:skip=CKV_AWS_109:Key policy, not an IAM policy: Resource "*" is this key, and the account-root statement is AWS's default delegation to IAM.
  #checkov:skip=CKV_AWS_111:Same key policy: principals, not resources, scope it.
  #checkov:skip=CKV_AWS_356:Same key policy: "*" is the only valid resource in a key policy.
  # In a key policy "Resource = *" means "this key"; the account root delegates to IAM policies.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "state" {
  description             = "Terraform state encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key_policy.json
}

resource "aws_kms_alias" "state" {
  name          = "alias/sage-terraform-state"
  target_key_id = aws_kms_key.state.key_id
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:A log bucket for the state bucket would itself need bootstrapping; audit state access with CloudTrail S3 data events instead.
  #checkov:skip=CKV_AWS_144:State is recoverable from object versions; cross-region replication is an account-level DR choice.
  bucket = "sage-terraform-state-${data.aws_caller_identity.current.account_id}"

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "old-state-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days           = 90
      newer_noncurrent_versions = 20
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "state_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.state.arn, "${aws_s3_bucket.state.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket     = aws_s3_bucket.state.id
  policy     = data.aws_iam_policy_document.state_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.state]
}

# Object events go to EventBridge (free for S3 events) so that rules can be added later without
# touching the bucket, e.g. alerting on deletes.
resource "aws_s3_bucket_notification" "state" {
  bucket      = aws_s3_bucket.state.id
  eventbridge = true
}

output "state_bucket" {
  description = "Put this name into environments/<env>.s3.tfbackend."
  value       = aws_s3_bucket.state.id
}
