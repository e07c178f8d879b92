# sage_ops on ECS: the Dagster webserver (behind the sage_ops gate, reached only through the UI's
# internal ALB and its OIDC sign-in), daemon and code-location gRPC server as three services;
# each run is its own ECS task of the run task definition below (EcsRunLauncher starts it as it is,
# only the command changes) with the run role, which holds every permission the pipelines need and
# nothing else. Dagster storage is a separate "dagster" database and role on the
# stack's RDS instance, created once by the db-init task (README).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  arn_ecs    = "arn:${local.partition}:ecs:${local.region}:${local.account_id}"
  arn_logs   = "arn:${local.partition}:logs:${local.region}:${local.account_id}"
  arn_iam    = "arn:${local.partition}:iam::${local.account_id}"

  namespace = "${var.name}.internal"
  grpc_host = "code.${local.namespace}"
  # What EcsRunLauncher starts for every run (dagster.yaml: task_definition: {env: ...}); the
  # launcher resolves the family to its latest ACTIVE revision when the daemon starts.
  run_family         = "${var.name}-sage-ops-run"
  compute_log_prefix = trimsuffix(var.compute_log_prefix, "/")

  # Read-only root filesystem everywhere; these are the only writable paths (ephemeral storage).
  scratch_volumes = {
    tmp     = "/tmp"
    state   = var.state_dir
    storage = "${var.dagster_home}/storage"
  }

  environment = merge(
    {
      AWS_REGION                   = local.region
      DAGSTER_HOME                 = var.dagster_home
      DAGSTER_CURRENT_IMAGE        = coalesce(var.image, "unset")
      DAGSTER_PG_HOST              = var.db_address
      DAGSTER_PG_PORT              = tostring(var.db_port)
      DAGSTER_PG_DB                = var.dagster_db_name
      DAGSTER_PG_USER              = var.dagster_db_user
      DAGSTER_COMPUTE_LOGS_BUCKET  = var.bucket_id
      DAGSTER_COMPUTE_LOGS_PREFIX  = local.compute_log_prefix
      SAGE_OPS_RUN_TASK_DEFINITION = local.run_family
      SAGE_OPS_STATE_DIR           = var.state_dir
      SAGE_OPS_BACKUP_URL          = "s3://${var.bucket_id}/${var.backup_prefix}"
      SAGE_OPS_REGISTRY            = split("/", var.backend_repository_url)[0]
      SAGE_OPS_IMAGE_REPOSITORY    = join("/", slice(split("/", var.backend_repository_url), 1, length(split("/", var.backend_repository_url))))
      SAGE_OPS_SNS_TOPIC_ARN       = var.alerts_topic_arn
      SAGE_OPS_ALARM_PREFIX        = "${var.name}-"
      SAGE_OPS_ENVIRONMENT         = trimprefix(var.name, "sage-")
      # libpq (pg_dump, psql, Dagster storage) refuses a server without TLS; Unix sockets (the
      # embedded scratch server) ignore it.
      PGSSLMODE = "require"
    },
    { for env, t in var.deploy_targets : "SAGE_OPS_${upper(env)}_TARGET" => "ecs://${t.cluster}/${t.service}" },
    local.capability_environment,
    var.extra_environment,
  )

  # What each capability needs beyond the basics (tests/infra/test_terraform_contract.py feeds
  # these names to sage_ops' own settings loaders): builds in CodeBuild, alarms from CloudWatch,
  # backups under the stack's KMS key, verification never restoring onto production, the repo.
  capability_environment = merge(
    {
      SAGE_OPS_BUILDER           = "codebuild"
      SAGE_OPS_CODEBUILD_PROJECT = local.codebuild_name
      SAGE_OPS_BUILD_SOURCE_URL  = "s3://${var.bucket_id}/${local.build_prefix}"
      SAGE_OPS_ALARM_SOURCE      = "cloudwatch"
      SAGE_OPS_S3_KMS_KEY_ID     = var.kms_key_arn
      # The full restore never goes to production: a scratch server if one is given, else an
      # embedded PostgreSQL 16 inside the run's own task, on ephemeral storage sized below.
      SAGE_OPS_VERIFY_LEVEL = "full"
      # migrate_database's migrations (deploy_backend takes the deployed commit's own).
      SAGE_OPS_MIGRATIONS_DIR = var.migrations_dir
    },
    local.triage_environment,
    var.scratch_database_url_secret_arn == null ? { SAGE_OPS_SCRATCH = "embedded" } : {},
    var.repo_url == null ? {} : { SAGE_OPS_REPO = var.repo_url },
    var.repo_credential_secret_arn == null ? {} : { SAGE_OPS_REPO_CREDENTIAL_SECRET = var.repo_credential_secret_arn },
  )

  # Triage's evidence: the stack's log groups, the connection budget's inputs (the sizing the
  # root's 53300 validation checks) and links back to the run in the UI.
  triage_environment = merge(
    {
      SAGE_OPS_LOG_GROUPS = join(",", distinct(concat(
        flatten([for t in values(var.deploy_targets) : t.log_groups]),
        [aws_cloudwatch_log_group.this.name],
      )))
    },
    { for k, v in var.connection_budget : "SAGE_OPS_${upper(k)}" => tostring(v) },
    var.dagster_url == null ? {} : { SAGE_OPS_DAGSTER_URL = var.dagster_url },
  )

  # Runs only: a service never migrates or verifies, so a missing environment secret (another
  # stack not applied yet) stops the runs that need it, never the daemon or the UI.
  run_secrets = merge(
    { for env, arn in var.environment_database_url_secret_arns : "${upper(env)}_DATABASE_URL" => arn },
    var.scratch_database_url_secret_arn == null ? {} : { SAGE_OPS_SCRATCH_DATABASE_URL = var.scratch_database_url_secret_arn },
  )

  secrets = merge(
    {
      DAGSTER_PG_PASSWORD = "${aws_secretsmanager_secret.dagster_db.arn}:password::"
      DATABASE_URL        = var.database_url_secret_arn
    },
    var.extra_secrets,
  )

  # The secret each valueFrom names (ARN, ARN:json-key::, or a name in this account and region),
  # as an IAM resource: names get Secrets Manager's random six-character suffix.
  arn_secrets = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret"
  secret_resources = distinct([
    for ref in concat(values(local.secrets), values(local.run_secrets), [var.master_secret_arn]) :
    startswith(ref, "arn:") ? join(":", slice(split(":", ref), 0, 7)) : "${local.arn_secrets}:${ref}-??????"
  ])

  log_options = {
    awslogs-group  = aws_cloudwatch_log_group.this.name
    awslogs-region = local.region
  }

  # Same container shape for the three services and the runs.
  base_container = {
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    environment            = [for k, v in local.environment : { name = k, value = v }]
    secrets                = [for k, v in local.secrets : { name = k, valueFrom = v }]
    mountPoints            = [for vol, path in local.scratch_volumes : { sourceVolume = vol, containerPath = path, readOnly = false }]
  }

  services = {
    # dagster-webserver's app inside the sage_ops gate: it trusts identities signed by the UI ALB
    # only (SAGE_OPS_GATE_ALB_ARN) and writes its audit lines to stdout, i.e. this log group.
    webserver = {
      cpu         = var.webserver_cpu
      memory      = var.webserver_memory
      role        = aws_iam_role.dagster.arn
      command     = ["sage-ops", "gate", "--host", "0.0.0.0", "--port", tostring(var.webserver_port), "--grpc-host", local.grpc_host, "--grpc-port", tostring(var.grpc_port)]
      port        = var.webserver_port
      health      = null
      environment = var.gate_environment
    }
    daemon = {
      cpu         = var.daemon_cpu
      memory      = var.daemon_memory
      role        = aws_iam_role.dagster.arn
      command     = ["dagster-daemon", "run", "--grpc-host", local.grpc_host, "--grpc-port", tostring(var.grpc_port)]
      port        = null
      health      = ["CMD", "dagster-daemon", "liveness-check"]
      environment = {}
    }
    code = {
      cpu         = var.code_cpu
      memory      = var.code_memory
      role        = aws_iam_role.code.arn
      command     = ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", tostring(var.grpc_port), "-m", var.definitions_module, "--location-name", "sage_ops"]
      port        = var.grpc_port
      health      = ["CMD", "dagster", "api", "grpc-health-check", "-p", tostring(var.grpc_port)]
      environment = {}
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}/sage-ops"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# --- Dagster storage credentials ---------------------------------------------------------------

resource "random_password" "dagster_db" {
  length           = 40
  special          = true
  override_special = "-_~"
}

resource "aws_secretsmanager_secret" "dagster_db" {
  #checkov:skip=CKV2_AWS_57:Terraform-generated password; rotate by replacing random_password.dagster_db and re-running db-init (README).
  name                    = "${var.name}/sage-ops/dagster-postgres"
  description             = "${var.name} Dagster storage credentials (JSON: username, password, host, port, dbname)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "dagster_db" {
  secret_id = aws_secretsmanager_secret.dagster_db.id
  secret_string = jsonencode({
    username = var.dagster_db_user
    password = random_password.dagster_db.result
    host     = var.db_address
    port     = var.db_port
    dbname   = var.dagster_db_name
  })
}

# --- service discovery: webserver and daemon find the code server by name ----------------------

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = local.namespace
  description = "${var.name} sage_ops internal names"
  vpc         = var.vpc_id
}

# Only the code server has a name: the webserver is reached through the UI ALB, never by name.
resource "aws_service_discovery_service" "this" {
  for_each = toset(["code"])
  name     = each.key

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  # ECS reports the tasks' health to Cloud Map (failure_threshold is deprecated: always 1).
  health_check_custom_config {}
}

# --- task definitions and services --------------------------------------------------------------

resource "aws_ecs_task_definition" "service" {
  for_each = local.services

  family                   = "${var.name}-sage-ops-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = each.value.role

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "volume" {
    for_each = local.scratch_volumes
    content {
      name = volume.key
    }
  }

  container_definitions = jsonencode([
    merge(
      local.base_container,
      {
        name         = each.key
        command      = each.value.command
        environment  = [for k, v in merge(local.environment, each.value.environment) : { name = k, value = v }]
        portMappings = each.value.port == null ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
        logConfiguration = {
          logDriver = "awslogs"
          options   = merge(local.log_options, { awslogs-stream-prefix = each.key })
        }
      },
      {
        for k, v in {
          healthCheck = each.value.health == null ? null : {
            command = each.value.health, interval = 30, timeout = 10, retries = 3, startPeriod = 60
          }
        } : k => v if v != null
      },
    )
  ])

  lifecycle {
    precondition {
      condition     = var.image != null
      error_message = "sage_ops_image is null: push the sage_ops image to ECR and set sage_ops_image = \"<repo>@sha256:<digest>\" (see infra/terraform/README.md)."
    }
  }
}

# Every Dagster run is one task of this definition: EcsRunLauncher (infra/dagster/dagster.yaml,
# task_definition: {env: SAGE_OPS_RUN_TASK_DEFINITION}) starts it as it is and only replaces the
# container's command, so what a run gets is what is declared here.
resource "aws_ecs_task_definition" "run" {
  family                   = local.run_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.run_cpu
  memory                   = var.run_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.run.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "volume" {
    for_each = local.scratch_volumes
    content {
      name = volume.key
    }
  }

  # The embedded scratch server restores the whole database onto this disk (sized by the root).
  ephemeral_storage {
    size_in_gib = var.run_ephemeral_storage_gib
  }

  container_definitions = jsonencode([
    merge(local.base_container, {
      # EcsRunLauncher's default container_name; its command is replaced for every run.
      name    = "run"
      command = ["sage-ops", "doctor", "--require-all"]
      secrets = [for k, v in merge(local.secrets, local.run_secrets) : { name = k, valueFrom = v }]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { awslogs-stream-prefix = "run" })
      }
    })
  ])

  lifecycle {
    precondition {
      condition     = var.image != null
      error_message = "sage_ops_image is null: push the sage_ops image to ECR and set sage_ops_image = \"<repo>@sha256:<digest>\" (see infra/terraform/README.md)."
    }
  }
}

resource "aws_ecs_service" "this" {
  for_each = local.services

  name             = "${var.name}-sage-ops-${each.key}"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.service[each.key].arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # Exactly one daemon may run at a time (two would double-fire schedules and sensors), so every
  # service stops the old task before starting the new one.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_id]
    assign_public_ip = false
  }

  health_check_grace_period_seconds = each.key == "webserver" ? 120 : null

  dynamic "load_balancer" {
    for_each = each.key == "webserver" ? [var.ui_target_group_arn] : []
    content {
      target_group_arn = load_balancer.value
      container_name   = "webserver"
      container_port   = var.webserver_port
    }
  }

  dynamic "service_registries" {
    for_each = contains(keys(aws_service_discovery_service.this), each.key) ? [each.key] : []
    content {
      registry_arn = aws_service_discovery_service.this[service_registries.value].arn
    }
  }
}

# One-off: creates the dagster role and database on the shared instance. The password reaches
# psql on stdin and leaves it only as a SCRAM verifier (never in argv or the DDL log).
resource "aws_ecs_task_definition" "db_init" {
  family                   = "${var.name}-sage-ops-db-init"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  # No task role: psql calls no AWS API.
  execution_role_arn = aws_iam_role.execution.arn

  container_definitions = jsonencode([
    {
      name                   = "db-init"
      image                  = var.db_init_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "postgres"
      command                = ["sh", "-c", file("${path.module}/db_init.sh")]
      environment = [
        { name = "PGHOST", value = var.db_address },
        { name = "PGPORT", value = tostring(var.db_port) },
        { name = "PGDATABASE", value = var.app_db_name },
        { name = "PGSSLMODE", value = "require" },
        { name = "DAGSTER_PG_USER", value = var.dagster_db_user },
        { name = "DAGSTER_PG_DB", value = var.dagster_db_name },
      ]
      secrets = [
        { name = "PGUSER", valueFrom = "${var.master_secret_arn}:username::" },
        { name = "PGPASSWORD", valueFrom = "${var.master_secret_arn}:password::" },
        { name = "DAGSTER_PG_PASSWORD", valueFrom = "${aws_secretsmanager_secret.dagster_db.arn}:password::" },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { awslogs-stream-prefix = "db-init" })
      }
    }
  ])
}
