# Four roles, each with only what its process calls:
#   execution - ECS agent: pull the sage_ops image, write its logs, inject its secrets
#   dagster   - webserver + daemon: EcsRunLauncher (run, watch, stop run tasks), read compute logs
#   code      - code-location server, where sensors run: read alarm state
#   run       - each Dagster run: push the backend image, deploy the backend services, run
#               migration tasks, read alarms/metrics/logs, write backups, publish to the alerts topic

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

locals {
  cluster_arn         = var.cluster_arn
  own_task_arns       = "${local.arn_ecs}:task/${var.cluster_name}/*"
  bucket_objects      = "${var.bucket_arn}/${var.backup_prefix}*"
  compute_log_objects = "${var.bucket_arn}/${local.compute_log_prefix}/*"

  target_cluster_arns   = [for t in values(var.deploy_targets) : "${local.arn_ecs}:cluster/${t.cluster}"]
  target_service_arns   = [for t in values(var.deploy_targets) : "${local.arn_ecs}:service/${t.cluster}/${t.service}"]
  target_family_arns    = [for t in values(var.deploy_targets) : "${local.arn_ecs}:task-definition/${t.family}:*"]
  target_task_arns      = [for t in values(var.deploy_targets) : "${local.arn_ecs}:task/${t.cluster}/*"]
  target_role_arns      = flatten([for t in values(var.deploy_targets) : ["${local.arn_iam}:role/${t.task_role}", "${local.arn_iam}:role/${t.execution_role}"]])
  target_log_group_arns = flatten([for t in values(var.deploy_targets) : [for g in t.log_groups : "${local.arn_logs}:log-group:${g}:*"]])
}

# --- execution -----------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-sage-ops-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullSageOpsImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
  }

  statement {
    sid       = "ReadSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_resources
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

# Other environments' secrets (staging's DATABASE_URL) are encrypted with their own stack's key,
# found by its alias (alias/sage-<env>) without reading that stack's state.
data "aws_iam_policy_document" "execution_environment_keys" {
  count = length(var.environment_kms_aliases) == 0 ? 0 : 1

  statement {
    sid       = "DecryptEnvironmentSecrets"
    actions   = ["kms:Decrypt"]
    resources = ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = var.environment_kms_aliases
    }
  }
}

resource "aws_iam_role_policy" "execution_environment_keys" {
  count  = length(var.environment_kms_aliases) == 0 ? 0 : 1
  name   = "decrypt-environment-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_environment_keys[0].json
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- dagster (webserver, daemon) -----------------------------------------------------------------

resource "aws_iam_role" "dagster" {
  name               = "${var.name}-sage-ops-dagster"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "dagster" {
  # DescribeTaskDefinition and DescribeNetworkInterfaces have no resource-level permissions; the
  # launcher reads the run task definition and the daemon's own ENI (use_current_ecs_task_config).
  # It registers nothing: every run is a task of Terraform's run task definition.
  statement {
    sid       = "RunLauncherUnscopable"
    actions   = ["ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"]
    resources = ["*"]
  }

  statement {
    sid       = "LaunchRunTasks"
    actions   = ["ecs:RunTask"]
    resources = ["${local.arn_ecs}:task-definition/${local.run_family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "WatchAndStopRunTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.own_task_arns]
  }

  statement {
    sid       = "TagRunTasksAtLaunch"
    actions   = ["ecs:TagResource"]
    resources = [local.own_task_arns]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }

  statement {
    sid       = "PassRunRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.run.arn, aws_iam_role.execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadRunFailureLogs"
    actions   = ["logs:GetLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
  }

  statement {
    sid       = "ListComputeLogs"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.compute_log_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadComputeLogs"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = [local.compute_log_objects]
  }

  statement {
    sid       = "DecryptComputeLogs"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dagster" {
  name   = "ecs-run-launcher"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster.json
}

# --- code (sensors) ------------------------------------------------------------------------------

resource "aws_iam_role" "code" {
  name               = "${var.name}-sage-ops-code"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "code" {
  # The alarm sensor lists alarms by name prefix: every alarm of this account and region.
  statement {
    sid       = "AlarmSensor"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*"]
  }
}

resource "aws_iam_role_policy" "code" {
  name   = "sensors"
  role   = aws_iam_role.code.id
  policy = data.aws_iam_policy_document.code.json
}

# --- run (the pipelines) -------------------------------------------------------------------------

resource "aws_iam_role" "run" {
  name               = "${var.name}-sage-ops-run"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "run" {
  # No resource-level permissions exist for these (AWS Service Authorization Reference).
  statement {
    sid = "Unscopable"
    actions = [
      "ecr:GetAuthorizationToken",
      "ecs:RegisterTaskDefinition",
      "ecs:DescribeTaskDefinition",
      "cloudwatch:GetMetricData",
    ]
    resources = ["*"]
  }

  statement {
    sid = "PushBackendImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [var.backend_repository_arn]
  }

  statement {
    sid       = "DeployBackendServices"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = local.target_service_arns
  }

  statement {
    sid       = "RunMigrationTasks"
    actions   = ["ecs:RunTask"]
    resources = local.target_family_arns
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = local.target_cluster_arns
    }
  }

  statement {
    sid       = "WatchMigrationTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = local.target_task_arns
  }

  statement {
    sid       = "TagMigrationTasksAtLaunch"
    actions   = ["ecs:TagResource"]
    resources = local.target_task_arns
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }

  # Registering a revision and running a task both pass the backend's roles to ECS.
  statement {
    sid       = "PassBackendRoles"
    actions   = ["iam:PassRole"]
    resources = local.target_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:*"]
  }

  # DescribeLogStreams: the Pipes ECS client waits for a one-off task's log stream to exist.
  statement {
    sid       = "ReadBackendAndDatabaseLogs"
    actions   = ["logs:FilterLogEvents", "logs:GetLogEvents", "logs:DescribeLogStreams"]
    resources = local.target_log_group_arns
  }

  statement {
    sid       = "ListBackupsAndComputeLogs"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.backup_prefix}*", "${local.compute_log_prefix}/*", "${local.build_prefix}*"]
    }
  }

  # Delete is retention; versioning keeps deleted backups recoverable for a while.
  statement {
    sid = "WriteBackups"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = [local.bucket_objects]
  }

  statement {
    sid       = "WriteComputeLogs"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.compute_log_objects]
  }

  statement {
    sid       = "EncryptBackupsAndAlerts"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "sns.${local.region}.amazonaws.com"]
    }
  }

  # sage-ops doctor reads the key's state before a backup depends on it.
  statement {
    sid       = "DescribeBackupKey"
    actions   = ["kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [var.alerts_topic_arn]
  }
}

resource "aws_iam_role_policy" "run" {
  name   = "sage-ops-pipelines"
  role   = aws_iam_role.run.id
  policy = data.aws_iam_policy_document.run.json
}
