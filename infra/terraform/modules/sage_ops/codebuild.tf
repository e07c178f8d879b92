# The `codebuild` builder (sage_ops/platforms/builders/codebuild.py): ECS Fargate has no Docker daemon, so
# a run uploads the commit's build context to the bucket (builds/<sha>.zip) and starts this
# project on it; infra/codebuild/buildspec.yml builds the image and pushes <sha> and latest to the
# backend repository. The project's role may read those zips, push to that repository and write
# its own logs - nothing else.

locals {
  build_prefix        = "builds/"
  codebuild_name      = "${var.name}-backend-build"
  codebuild_log_group = "/aws/codebuild/${local.codebuild_name}"
}

resource "aws_cloudwatch_log_group" "codebuild" {
  name              = local.codebuild_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "codebuild_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "codebuild" {
  name               = "${var.name}-sage-ops-codebuild"
  assume_role_policy = data.aws_iam_policy_document.codebuild_assume.json
}

data "aws_iam_policy_document" "codebuild" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushBackendImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.backend_repository_arn]
  }

  statement {
    sid       = "ReadBuildSource"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.bucket_arn}/${local.build_prefix}*"]
  }

  statement {
    sid       = "WriteBuildLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.codebuild.arn}:log-stream:*"]
  }

  statement {
    sid       = "DecryptSourceEncryptImages"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "ecr.${local.region}.amazonaws.com", "logs.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "codebuild" {
  name   = "build-backend-image"
  role   = aws_iam_role.codebuild.id
  policy = data.aws_iam_policy_document.codebuild.json
}

resource "aws_codebuild_project" "backend" {
  name           = local.codebuild_name
  description    = "Builds the backend image for sage_ops (source: the commit's context zip, set per build)"
  service_role   = aws_iam_role.codebuild.arn
  encryption_key = var.kms_key_arn
  build_timeout  = 60

  # sage_ops overrides the location on every build (sourceLocationOverride).
  source {
    type      = "S3"
    location  = "${var.bucket_id}/${local.build_prefix}none.zip"
    buildspec = file("${path.module}/../../../codebuild/buildspec.yml")
  }

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    #checkov:skip=CKV_AWS_316:docker build needs the Docker daemon CodeBuild only runs in privileged mode; the project builds sage_ops' own uploads, and its role can push to one repository.
    type            = "LINUX_CONTAINER"
    image           = "aws/codebuild/standard:7.0"
    compute_type    = "BUILD_GENERAL1_MEDIUM"
    privileged_mode = true
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.codebuild.name
    }
    s3_logs {
      status = "DISABLED"
    }
  }
}

# --- what the runs and sensors need for the production path (on the existing roles) -----------

data "aws_iam_policy_document" "run_production_path" {
  statement {
    sid       = "RunBackendBuilds"
    actions   = ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild", "codebuild:BatchGetProjects"]
    resources = [aws_codebuild_project.backend.arn]
  }

  statement {
    sid       = "FollowBuildLogs"
    actions   = ["logs:GetLogEvents"]
    resources = ["${aws_cloudwatch_log_group.codebuild.arn}:log-stream:*"]
  }

  statement {
    sid       = "UploadBuildSource"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/${local.build_prefix}*"]
  }

  # The ECS deployer's health gate: the new tasks (ListTasks is scoped by cluster) and their
  # state in the ALB target group (ELB's Describe* have no resource-level permissions).
  statement {
    sid       = "ListBackendTasks"
    actions   = ["ecs:ListTasks"]
    resources = [for t in values(var.deploy_targets) : "${local.arn_ecs}:container-instance/${t.cluster}/*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = local.target_cluster_arns
    }
  }

  statement {
    sid       = "ReadTargetHealth"
    actions   = ["elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTargetGroups"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "run_production_path" {
  name   = "sage-ops-production-path"
  role   = aws_iam_role.run.id
  policy = data.aws_iam_policy_document.run_production_path.json
}

# The git sensor (code server) and runs fetch a private repository with this credential.
data "aws_iam_policy_document" "repo_credential" {
  count = var.repo_credential_secret_arn == null ? 0 : 1

  statement {
    sid       = "ReadRepoCredential"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.repo_credential_secret_arn]
  }

  statement {
    sid       = "DecryptRepoCredential"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "repo_credential" {
  for_each = var.repo_credential_secret_arn == null ? {} : { code = aws_iam_role.code.id, run = aws_iam_role.run.id }
  name     = "repo-credential"
  role     = each.value
  policy   = data.aws_iam_policy_document.repo_credential[0].json
}
