locals {
  name       = "sage-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id

  # One set of repositories per account, shared by every environment: staging and production
  # run the same digests.
  ecr_repositories = { backend = "sage-backend", sage_ops = "sage-ops" }
  ecr = var.create_ecr_repositories ? {
    for k, m in module.ecr : k => { arn = m.arn, url = m.repository_url }
    } : {
    for k, d in data.aws_ecr_repository.shared : k => { arn = d.arn, url = d.repository_url }
  }

  # The naming convention every module follows, so that sage_ops in one stack can be granted
  # another environment's service before (or without) reading that stack's state.
  deploy_targets = {
    for env in var.sage_ops_deploy_environments : env => {
      cluster        = "sage-${env}"
      service        = "sage-${env}-backend"
      family         = "sage-${env}-backend"
      task_role      = "sage-${env}-backend-task"
      execution_role = "sage-${env}-backend-execution"
      log_groups     = ["/ecs/sage-${env}/backend", "/aws/rds/instance/sage-${env}-postgres/postgresql"]
    }
  }
}

module "kms" {
  source = "./modules/kms"
  name   = local.name
}

module "log_bucket" {
  source          = "./modules/log_bucket"
  name            = "${local.name}-logs-${local.account_id}"
  expiration_days = var.access_log_retention_days
}

module "network" {
  source                   = "./modules/network"
  name                     = local.name
  cidr                     = var.vpc_cidr
  availability_zones       = var.availability_zones
  single_nat_gateway       = var.single_nat_gateway
  flow_log_destination_arn = module.log_bucket.flow_log_arn
}

module "security_groups" {
  source                   = "./modules/security_groups"
  name                     = local.name
  vpc_id                   = module.network.vpc_id
  alb_ingress_cidrs        = var.alb_ingress_cidrs
  backend_port             = var.backend_container_port
  sage_ops_enabled         = var.sage_ops_enabled
  dagster_ui_allowed_cidrs = var.dagster_ui_allowed_cidrs
  peer_database_cidrs      = values(var.sage_ops_peer_vpc_cidrs)
  peer_sage_ops_name       = var.sage_ops_peer_environment == null ? null : "sage-${var.sage_ops_peer_environment}"
}

# Staging's database reached by production's sage_ops (migrations, their backups): see the module.
module "sage_ops_peering" {
  source = "./modules/sage_ops_peering"
  count  = var.sage_ops_peer_environment == null ? 0 : 1

  name            = local.name
  peer_name       = "sage-${coalesce(var.sage_ops_peer_environment, "none")}"
  vpc_id          = module.network.vpc_id
  vpc_cidr        = module.network.vpc_cidr
  route_table_ids = module.network.private_route_table_ids
}

module "alb" {
  source              = "./modules/alb"
  name                = local.name
  vpc_id              = module.network.vpc_id
  public_subnet_ids   = module.network.public_subnet_ids
  security_group_id   = module.security_groups.alb_id
  certificate_arn     = var.certificate_arn
  target_port         = var.backend_container_port
  health_check_path   = "/health"
  deletion_protection = var.deletion_protection
  access_log_bucket   = module.log_bucket.id
  access_log_prefix   = module.log_bucket.alb_prefix
  kms_key_arn         = module.kms.key_arn
  log_retention_days  = var.log_retention_days
}

module "ecr" {
  source      = "./modules/ecr"
  for_each    = var.create_ecr_repositories ? local.ecr_repositories : {}
  name        = each.value
  kms_key_arn = module.kms.key_arn
  keep_images = var.ecr_keep_images
}

data "aws_ecr_repository" "shared" {
  for_each = var.create_ecr_repositories ? {} : local.ecr_repositories
  name     = each.value
}

module "ecs_cluster" {
  source             = "./modules/ecs_cluster"
  name               = local.name
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

module "rds" {
  source                = "./modules/rds"
  name                  = local.name
  partition             = data.aws_partition.current.partition
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.security_groups.rds_id
  instance_class        = var.db_instance_class
  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  multi_az              = var.db_multi_az
  backup_retention_days = var.db_backup_retention_days
  deletion_protection   = var.deletion_protection
  max_connections       = var.db_max_connections
  connection_limit      = var.backend_db_connection_limit
  kms_key_arn           = module.kms.key_arn
  log_retention_days    = var.log_retention_days
}

module "redis" {
  source             = "./modules/redis"
  name               = local.name
  subnet_ids         = module.network.private_subnet_ids
  security_group_id  = module.security_groups.redis_id
  node_type          = var.redis_node_type
  num_nodes          = var.redis_num_nodes
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

module "ecs_backend" {
  source                     = "./modules/ecs_backend"
  name                       = local.name
  cluster_arn                = module.ecs_cluster.arn
  image                      = var.backend_image
  ecr_repository_arn         = local.ecr["backend"].arn
  cpu                        = var.backend_cpu
  memory                     = var.backend_memory
  container_port             = var.backend_container_port
  desired_count              = var.backend_desired_count
  deployment_minimum_percent = var.backend_deployment_minimum_percent
  deployment_maximum_percent = var.backend_deployment_maximum_percent
  subnet_ids                 = module.network.private_subnet_ids
  security_group_id          = module.security_groups.backend_id
  target_group_arn           = module.alb.target_group_arn
  environment                = var.backend_environment
  secrets = {
    DATABASE_URL = module.rds.database_url_secret_arn
    REDIS_URL    = module.redis.redis_url_secret_arn
  }
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days

  # The target group must be attached to a listener before a service can register into it.
  depends_on = [module.alb]
}

module "alarms" {
  source                   = "./modules/alarms"
  name                     = local.name
  topic_name               = var.alerts_topic_name
  email_subscriptions      = var.alert_email_subscriptions
  kms_key_arn              = module.kms.key_arn
  ecs_cluster_name         = module.ecs_cluster.name
  ecs_service_name         = module.ecs_backend.service_name
  db_instance_identifier   = module.rds.identifier
  alb_arn_suffix           = module.alb.arn_suffix
  db_max_connections       = module.rds.max_connections
  connection_alarm_percent = var.db_connection_alarm_percent
}

module "backups_bucket" {
  source                 = "./modules/backups_bucket"
  count                  = var.sage_ops_enabled ? 1 : 0
  name                   = "${local.name}-backups-${local.account_id}"
  kms_key_arn            = module.kms.key_arn
  access_log_bucket      = module.log_bucket.id
  access_log_prefix      = module.log_bucket.s3_access_log_prefix
  backup_expiration_days = var.backup_expiration_days
}

# The Dagster UI's way in: internal ALB, OIDC sign-in, then the sage_ops gate in the webserver task.
module "dagster_ui" {
  source = "./modules/dagster_ui"
  count  = var.sage_ops_enabled ? 1 : 0

  name                  = local.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.security_groups.dagster_ui_id
  certificate_arn       = var.dagster_ui_certificate_arn
  oidc                  = var.dagster_ui_oidc
  session_timeout_s     = var.dagster_ui_session_timeout_s
  allowed_email_domains = var.dagster_ui_allowed_email_domains
  admin_emails          = var.dagster_ui_admin_emails
  admin_groups          = var.dagster_ui_admin_groups
  groups_claim          = var.dagster_ui_groups_claim
  target_port           = 3000
  deletion_protection   = var.deletion_protection
  access_log_bucket     = module.log_bucket.id
  access_log_prefix     = module.log_bucket.alb_prefix
}

module "sage_ops" {
  source = "./modules/sage_ops"
  count  = var.sage_ops_enabled ? 1 : 0

  name                    = local.name
  image                   = var.sage_ops_image
  ecr_repository_arn      = local.ecr["sage_ops"].arn
  backend_repository_arn  = local.ecr["backend"].arn
  backend_repository_url  = local.ecr["backend"].url
  cluster_arn             = module.ecs_cluster.arn
  cluster_name            = module.ecs_cluster.name
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  security_group_id       = module.security_groups.sage_ops_id
  deploy_targets          = local.deploy_targets
  db_address              = module.rds.address
  db_port                 = module.rds.port
  app_db_name             = module.rds.database_name
  master_secret_arn       = module.rds.master_secret_arn
  database_url_secret_arn = module.rds.ops_database_url_secret_arn
  bucket_id               = module.backups_bucket[0].id
  bucket_arn              = module.backups_bucket[0].arn
  backup_prefix           = module.backups_bucket[0].backup_prefix
  compute_log_prefix      = module.backups_bucket[0].compute_log_prefix
  alerts_topic_arn        = module.alarms.topic_arn
  kms_key_arn             = module.kms.key_arn
  log_retention_days      = var.log_retention_days
  extra_environment       = var.sage_ops_environment
  ui_target_group_arn     = module.dagster_ui[0].target_group_arn
  gate_environment        = module.dagster_ui[0].gate_environment
  # The target group must be attached to the sign-in listener before the webserver registers.
  depends_on = [module.dagster_ui]

  repo_url                   = var.sage_ops_repo
  repo_credential_secret_arn = var.sage_ops_repo_credential_secret_arn
  # Each environment's database URL is the secret its own stack's rds module creates
  # (sage-<env>/sage-ops/database-url, under that stack's key alias/sage-<env>): this stack's by ARN,
  # the others by name, so no stack reads another's state. An explicit ARN overrides.
  environment_database_url_secret_arns = merge(
    { for env in var.sage_ops_deploy_environments : env => "sage-${env}/sage-ops/database-url" if env != var.environment },
    { (var.environment) = module.rds.ops_database_url_secret_arn },
    var.sage_ops_environment_database_url_secret_arns,
  )
  environment_kms_aliases         = [for env in var.sage_ops_deploy_environments : "alias/sage-${env}" if env != var.environment]
  scratch_database_url_secret_arn = var.sage_ops_scratch_database_url_secret_arn
  run_ephemeral_storage_gib       = local.run_ephemeral_storage_gib
  migrations_dir                  = var.sage_ops_migrations_dir
  dagster_url                     = var.dagster_ui_url
  connection_budget = {
    service_tasks      = var.backend_desired_count
    db_pool_size       = var.backend_db_connection_limit
    task_vcpus         = var.backend_cpu / 1024
    db_max_connections = var.db_max_connections
    deploy_max_percent = var.backend_deployment_maximum_percent
  }
}

# Without a scratch server, the nightly full restore runs on an embedded PostgreSQL 16 in the run's
# task: its disk holds the restored database, which storage autoscaling may grow up to
# db_max_allocated_storage, plus a quarter for WAL and indexes being built. A database that may
# outgrow what Fargate offers (200 GiB) needs a scratch server instead (validated in variables.tf).
locals {
  run_ephemeral_storage_gib = min(200, max(21, ceil(var.db_max_allocated_storage * 1.25)))
}

# The deploy grants above are built from names; fail the plan if a module stops following them.
check "deploy_target_naming" {
  assert {
    condition = !contains(var.sage_ops_deploy_environments, var.environment) || (
      local.deploy_targets[var.environment].cluster == module.ecs_cluster.name &&
      local.deploy_targets[var.environment].service == module.ecs_backend.service_name &&
      local.deploy_targets[var.environment].family == module.ecs_backend.task_definition_family &&
      contains(local.deploy_targets[var.environment].log_groups, module.ecs_backend.log_group_name)
    )
    error_message = "Backend resource names no longer follow the sage-<env> convention that sage_ops's IAM grants rely on."
  }
}
