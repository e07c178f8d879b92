variable "name" {
  description = "Name prefix (sage-<environment>)."
  type        = string
}

variable "image" {
  description = "sage_ops image (repo@sha256:digest); null until the first push."
  type        = string
  default     = null
}

variable "ecr_repository_arn" {
  description = "sage_ops image repository (pull)."
  type        = string
}

variable "backend_repository_arn" {
  description = "Backend image repository sage_ops pushes to."
  type        = string
}

variable "backend_repository_url" {
  description = "Backend image repository URL (SAGE_OPS_REGISTRY)."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster for the sage_ops services and run tasks."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the private DNS namespace."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for sage_ops tasks."
  type        = list(string)
}

variable "security_group_id" {
  description = "sage_ops tasks security group."
  type        = string
}

variable "deploy_targets" {
  description = "Backend services sage_ops may deploy, by environment (names follow the sage-<env> convention)."
  type = map(object({
    cluster        = string
    service        = string
    family         = string
    task_role      = string
    execution_role = string
    log_groups     = list(string)
  }))
}

variable "db_address" {
  description = "RDS endpoint hostname (shared instance)."
  type        = string
}

variable "db_port" {
  description = "RDS port."
  type        = number
}

variable "app_db_name" {
  description = "Application database (db-init connects there first)."
  type        = string
}

variable "dagster_db_name" {
  description = "Database for Dagster storage on the shared instance."
  type        = string
  default     = "dagster"
}

variable "dagster_db_user" {
  description = "Role owning the Dagster database."
  type        = string
  default     = "dagster"
}

variable "master_secret_arn" {
  description = "RDS master credentials secret (db-init only)."
  type        = string
}

variable "database_url_secret_arn" {
  description = "Secret with the application DATABASE_URL sage_ops backs up and migrates."
  type        = string
}

variable "bucket_id" {
  description = "Backups bucket name."
  type        = string
}

variable "bucket_arn" {
  description = "Backups bucket ARN."
  type        = string
}

variable "backup_prefix" {
  description = "Key prefix for backups (ends with /)."
  type        = string
}

variable "compute_log_prefix" {
  description = "Key prefix for Dagster compute logs."
  type        = string
}

variable "alerts_topic_arn" {
  description = "SNS topic sage_ops publishes incident reports to."
  type        = string
}

variable "kms_key_arn" {
  description = "Stack KMS key (logs, secrets, S3, SNS)."
  type        = string
}

variable "log_retention_days" {
  description = "Log retention."
  type        = number
}

variable "extra_environment" {
  description = "Plain environment variables merged over the defaults."
  type        = map(string)
  default     = {}
}

variable "extra_secrets" {
  description = "Env var name -> Secrets Manager ARN (e.g. a git token); the execution role may read them."
  type        = map(string)
  default     = {}
}

variable "dagster_home" {
  description = "DAGSTER_HOME inside the image (holds dagster.yaml)."
  type        = string
  default     = "/opt/dagster/dagster_home"
}

variable "state_dir" {
  description = "SAGE_OPS_STATE_DIR (git cache, scratch); ephemeral per task."
  type        = string
  default     = "/var/lib/sage-ops"
}

variable "definitions_module" {
  description = "Python module with the Definitions object."
  type        = string
  default     = "sage_ops.definitions"
}

variable "db_init_image" {
  description = "Image with psql 16 for the db-init task."
  type        = string
  default     = "public.ecr.aws/docker/library/postgres:16-alpine"
}

variable "webserver_port" {
  description = "Dagster webserver port."
  type        = number
  default     = 3000
}

variable "grpc_port" {
  description = "Code-location gRPC port."
  type        = number
  default     = 4000
}

variable "webserver_cpu" {
  description = "Webserver task CPU units."
  type        = number
  default     = 512
}

variable "webserver_memory" {
  description = "Webserver task memory (MiB)."
  type        = number
  default     = 1024
}

variable "daemon_cpu" {
  description = "Daemon task CPU units (run tasks inherit this shape unless run_resources is set)."
  type        = number
  default     = 1024
}

variable "daemon_memory" {
  description = "Daemon task memory (MiB)."
  type        = number
  default     = 2048
}

variable "code_cpu" {
  description = "Code-server task CPU units."
  type        = number
  default     = 512
}

variable "code_memory" {
  description = "Code-server task memory (MiB)."
  type        = number
  default     = 1024
}

variable "repo_url" {
  description = "SAGE_OPS_REPO: the backend repository the git sensor watches (null: the sensor skips)."
  type        = string
  default     = null
}

variable "repo_credential_secret_arn" {
  description = "Secrets Manager secret with a deploy key or token for a private repo_url (SAGE_OPS_REPO_CREDENTIAL_SECRET)."
  type        = string
  default     = null
}

variable "environment_database_url_secret_arns" {
  description = "Per environment (staging, production), the secret holding its DATABASE_URL, for deploy-time migrations."
  type        = map(string)
  default     = {}
}

variable "environment_kms_aliases" {
  description = "KMS aliases (alias/sage-<env>) of other environments' stacks whose secrets the runs read (environment_database_url_secret_arns)."
  type        = list(string)
  default     = []
}

variable "run_cpu" {
  description = "Run task CPU units (pg_dump, compression, the embedded scratch server)."
  type        = number
  default     = 1024
}

variable "run_memory" {
  description = "Run task memory (MiB)."
  type        = number
  default     = 4096
}

variable "run_ephemeral_storage_gib" {
  description = "Run task ephemeral storage: room for the embedded scratch server's full restore (Fargate: 21-200)."
  type        = number
  default     = 21

  validation {
    condition     = var.run_ephemeral_storage_gib >= 21 && var.run_ephemeral_storage_gib <= 200
    error_message = "Fargate ephemeral storage is 21 to 200 GiB."
  }
}

variable "migrations_dir" {
  description = "SAGE_OPS_MIGRATIONS_DIR: the backend's Prisma migrations inside the sage_ops image, for the stand-alone migrate_database job (deploy_backend applies the deployed commit's own)."
  type        = string
  default     = "/opt/dagster/migrations"
}

variable "connection_budget" {
  description = "The backend's connection sizing, for triage's connection budget (SAGE_OPS_SERVICE_TASKS, _DB_POOL_SIZE, _TASK_VCPUS, _DB_MAX_CONNECTIONS, _DEPLOY_MAX_PERCENT)."
  type = object({
    service_tasks      = number
    db_pool_size       = number
    task_vcpus         = number
    db_max_connections = number
    deploy_max_percent = number
  })
}

variable "dagster_url" {
  description = "The Dagster UI's URL, for links in incident reports (SAGE_OPS_DAGSTER_URL); null: none."
  type        = string
  default     = null
}

variable "scratch_database_url_secret_arn" {
  description = "Secret with SAGE_OPS_SCRATCH_DATABASE_URL, a PostgreSQL 16 server that is not production (null: an embedded PostgreSQL 16 in the run's own task, SAGE_OPS_SCRATCH=embedded)."
  type        = string
  default     = null
}

variable "ui_target_group_arn" {
  description = "Target group of the Dagster UI's internal ALB; the webserver service registers into it."
  type        = string
}

variable "gate_environment" {
  description = "SAGE_OPS_GATE_* settings of the webserver container (the ALB to trust, provider, admins)."
  type        = map(string)
}
