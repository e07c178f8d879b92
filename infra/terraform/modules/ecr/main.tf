resource "aws_ecr_repository" "this" {
  #checkov:skip=CKV_AWS_51:Every tag is immutable except `latest` (IMMUTABLE_WITH_EXCLUSION, which this check predates); deploys use digests.
  name = var.name
  # SHA tags never move; `latest` moves on every deploy (sage_ops and the buildspec push it).
  image_tag_mutability = "IMMUTABLE_WITH_EXCLUSION"

  image_tag_mutability_exclusion_filter {
    filter      = "latest"
    filter_type = "WILDCARD"
  }

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

# Deploys reference images by digest, so the lifecycle must keep enough history for rollbacks
# (rollback_deployment redeploys a previous digest) while untagged leftovers go quickly.
resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 14 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 14
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.keep_images} images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}
