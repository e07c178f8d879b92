variable "region" {
  description = "AWS region for every resource of this stack."
  type        = string
  default     = "us-west-2"
}

variable "environment" {
  description = "Environment name; also the name infix of every resource (sage-<environment>-...)."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be \"staging\" or \"production\"."
  }
}

# --- network -------------------------------------------------------------------------------------

variable "availability_zones" {
  description = "The two AZs of the stack, by name. Pinned so that the subnet layout never moves."
  type        = list(string)
  default     = ["us-west-2a", "us-west-2b"]

  validation {
    condition     = length(distinct(var.availability_zones)) == 2 && alltrue([for az in var.availability_zones : startswith(az, var.region)])
    error_message = "availability_zones must be two distinct AZs of var.region."
  }
}

variable "vpc_cidr" {
  description = "VPC CIDR; split into 2 public and 2 private /20 subnets."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both private subnets (cheaper, loses egress if its AZ fails)."
  type        = bool
  default     = false
}

# --- edge ----------------------------------------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate for the ALB. Set: HTTPS listener + HTTP->HTTPS redirect. Null: plain HTTP forward (bring-up only)."
  type        = string
  default     = null
}

variable "alb_ingress_cidrs" {
  description = "CIDRs allowed to reach the public ALB."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "deletion_protection" {
  description = "Deletion protection on the ALB and the RDS instance (turn off only to tear down)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for every log group of the stack."
  type        = number
  default     = 365
}

variable "access_log_retention_days" {
  description = "Days to keep ALB, S3 access and VPC flow logs in the log bucket."
  type        = number
  default     = 365
}

# --- backend service -----------------------------------------------------------------------------

variable "backend_image" {
  description = "Backend image the Terraform task definition starts with, as repo@sha256:digest. Null until the first image is pushed; afterwards sage_ops owns which image runs."
  type        = string
  default     = null
}

variable "backend_container_port" {
  description = "Port the Nest.js backend listens on."
  type        = number
  default     = 3000
}

variable "backend_cpu" {
  description = "Fargate CPU units per backend task."
  type        = number
  default     = 512
}

variable "backend_memory" {
  description = "Fargate memory (MiB) per backend task."
  type        = number
  default     = 1024
}

variable "backend_desired_count" {
  description = "Backend tasks in steady state."
  type        = number
  default     = 2
}

variable "backend_deployment_minimum_percent" {
  description = "ECS deployment_minimum_healthy_percent for the backend service."
  type        = number
  default     = 100
}

variable "backend_deployment_maximum_percent" {
  description = "ECS deployment_maximum_percent; 200 doubles tasks and DB connections during a deploy."
  type        = number
  default     = 200
}

variable "backend_db_connection_limit" {
  description = "Prisma connection_limit per backend task, written into DATABASE_URL."
  type        = number
  default     = 10
}

variable "backend_environment" {
  description = "Extra plain environment variables for the backend container."
  type        = map(string)
  default     = {}
}

# --- data stores ---------------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial RDS storage (GiB)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
  default     = 200
}

variable "db_multi_az" {
  description = "Standby replica in the second AZ."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "RDS automated backup (PITR) retention."
  type        = number
  default     = 14
}

variable "db_reserved_connections" {
  description = "Connections kept free for sage_ops (Dagster storage, backups, migrations) and admins."
  type        = number
  default     = 30
}

variable "db_max_connections" {
  description = "PostgreSQL max_connections (parameter group). Sized for a deploy at maximum percent."
  type        = number
  default     = 200

  # The 53300 lesson: during a rolling deploy tasks x pool size must still fit.
  validation {
    condition = var.db_max_connections >= (
      ceil(var.backend_desired_count * var.backend_deployment_maximum_percent / 100)
      * var.backend_db_connection_limit + var.db_reserved_connections
    )
    error_message = "db_max_connections is below ceil(desired_count * maximum_percent / 100) * backend_db_connection_limit + db_reserved_connections: a deploy would exhaust connections (SQLSTATE 53300)."
  }
}

variable "db_connection_alarm_percent" {
  description = "DatabaseConnections alarm threshold as a percentage of db_max_connections."
  type        = number
  default     = 80
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_num_nodes" {
  description = "Redis nodes (primary + replicas, >= 2: automatic failover across the two AZs)."
  type        = number
  default     = 2
}

# --- alerts --------------------------------------------------------------------------------------

variable "alerts_topic_name" {
  description = "SNS topic every alarm notifies (sage_ops publishes incident reports there too)."
  type        = string
  default     = "sage-alerts"
}

variable "alert_email_subscriptions" {
  description = "E-mail addresses subscribed to the alerts topic (each must confirm)."
  type        = list(string)
  default     = []
}

# --- shared resources and sage_ops ---------------------------------------------------------------

variable "create_ecr_repositories" {
  description = "This stack owns the ECR repositories (one per account); other stacks look them up by name."
  type        = bool
  default     = true
}

variable "ecr_keep_images" {
  description = "Images kept per repository (rollback depth) before lifecycle expiry."
  type        = number
  default     = 50
}

variable "sage_ops_enabled" {
  description = "Run sage_ops (Dagster) in this stack. One instance per account deploys every environment."
  type        = bool
  default     = true
}

variable "sage_ops_image" {
  description = "sage_ops image as repo@sha256:digest. Null until the first image is pushed."
  type        = string
  default     = null
}

variable "sage_ops_deploy_environments" {
  description = "Environments whose backend service sage_ops may deploy, in promotion order."
  type        = list(string)
  default     = ["staging", "production"]
}

variable "dagster_ui_allowed_cidrs" {
  description = "CIDRs (VPN, bastion) allowed to reach the Dagster UI's internal ALB on 443 (sign-in required)."
  type        = list(string)
  default     = []
}

variable "dagster_ui_certificate_arn" {
  description = "ACM certificate for the Dagster UI's DNS name (required with sage_ops)."
  type        = string
  default     = null
}

variable "dagster_ui_oidc" {
  description = "OIDC identity provider of the Dagster UI sign-in (Cognito or any other; README). client_secret_arn: a Secrets Manager secret holding the client secret as plain text; the secret itself is never a variable."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
    client_secret_arn      = string
    scope                  = optional(string, "openid email")
  })
  default = null

  validation {
    # A conditional, not ||: Terraform evaluates both sides of || (null.issuer would fail).
    condition = var.dagster_ui_oidc == null ? true : alltrue([
      for url in [var.dagster_ui_oidc.issuer, var.dagster_ui_oidc.authorization_endpoint, var.dagster_ui_oidc.token_endpoint, var.dagster_ui_oidc.user_info_endpoint] :
      startswith(url, "https://")
    ])
    error_message = "dagster_ui_oidc: issuer and endpoints must be https:// URLs."
  }

  validation {
    condition     = var.dagster_ui_oidc == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.dagster_ui_oidc.client_secret_arn))
    error_message = "dagster_ui_oidc.client_secret_arn must be a Secrets Manager secret ARN (never the secret itself)."
  }
}

variable "dagster_ui_session_timeout_s" {
  description = "Seconds a Dagster UI sign-in lasts before the ALB asks the identity provider again."
  type        = number
  default     = 28800
}

variable "dagster_ui_allowed_email_domains" {
  description = "Email domains the sage_ops gate lets into the Dagster UI (empty: any account the provider signs in)."
  type        = list(string)
  default     = []
}

variable "dagster_ui_admin_groups" {
  description = "Groups (claim dagster_ui_groups_claim) whose members may run the destructive and production actions."
  type        = list(string)
  default     = []
}

variable "dagster_ui_admin_emails" {
  description = "Accounts that may run the destructive and production actions."
  type        = list(string)
  default     = []
}

variable "dagster_ui_groups_claim" {
  description = "User-info claim holding a user's groups (Okta, Entra ID: groups; Cognito sends none, see README)."
  type        = string
  default     = "groups"
}

variable "sage_ops_environment" {
  description = "Extra plain environment variables for the sage_ops containers (override defaults)."
  type        = map(string)
  default     = {}
}

variable "backup_expiration_days" {
  description = "S3 lifecycle safety net: backups older than this expire even if sage_ops retention never ran."
  type        = number
  default     = 400
}

variable "sage_ops_repo" {
  description = "Backend repository sage_ops's git sensor watches and deploys from (SAGE_OPS_REPO): https://host/org/repo.git, ssh://git@host/org/repo.git or git@host:org/repo.git."
  type        = string
  default     = null

  validation {
    condition     = !var.sage_ops_enabled || length(var.sage_ops_deploy_environments) == 0 || can(regex("^(https://|ssh://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)", coalesce(var.sage_ops_repo, "none")))
    error_message = "sage_ops_repo is required where sage_ops deploys (sage_ops_deploy_environments): without it the git sensor watches nothing and no push is ever deployed. Set it to the backend repository's https:// or SSH URL (README, step 0)."
  }
}

variable "sage_ops_repo_credential_secret_arn" {
  description = "Secrets Manager secret with a deploy key (SSH URLs) or a token (https URLs) for sage_ops_repo; null only for a public https repository."
  type        = string
  default     = null

  validation {
    condition     = var.sage_ops_repo_credential_secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:", coalesce(var.sage_ops_repo_credential_secret_arn, "none")))
    error_message = "sage_ops_repo_credential_secret_arn must be a Secrets Manager secret ARN (never the key or token itself)."
  }

  validation {
    condition     = var.sage_ops_repo_credential_secret_arn != null || var.sage_ops_repo == null || startswith(coalesce(var.sage_ops_repo, "https://"), "https://")
    error_message = "sage_ops_repo is an SSH URL, which always needs a deploy key: set sage_ops_repo_credential_secret_arn to the secret holding it."
  }
}

variable "sage_ops_environment_database_url_secret_arns" {
  description = "Overrides of the environments' DATABASE_URL secrets for deploy-time migrations (by default each environment's stack's sage-<env>/sage-ops/database-url)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for env, arn in var.sage_ops_environment_database_url_secret_arns : contains(var.sage_ops_deploy_environments, env) && can(regex("^arn:aws[a-z-]*:secretsmanager:", arn))])
    error_message = "sage_ops_environment_database_url_secret_arns: keys must be environments of sage_ops_deploy_environments and values Secrets Manager secret ARNs."
  }
}

variable "sage_ops_peer_environment" {
  description = "The environment whose stack runs sage_ops when that is another stack (staging: production): this VPC is peered with its VPC and its sage_ops tasks may reach this stack's database. Null: none."
  type        = string
  default     = null

  validation {
    condition     = var.sage_ops_peer_environment == null || contains(["staging", "production"], coalesce(var.sage_ops_peer_environment, "none"))
    error_message = "sage_ops_peer_environment must be null, \"staging\" or \"production\"."
  }
}

variable "sage_ops_peer_vpc_cidrs" {
  description = "VPC CIDRs of the other environments whose stacks peer with this one (set sage_ops_peer_environment there): sage_ops tasks may reach PostgreSQL in them."
  type        = map(string)
  default     = {}
}

variable "sage_ops_scratch_database_url_secret_arn" {
  description = "Secret with a scratch PostgreSQL 16 URL for full backup verification (null: an embedded PostgreSQL 16 inside the run's own task)."
  type        = string
  default     = null

  validation {
    condition     = var.sage_ops_scratch_database_url_secret_arn == null ? var.db_max_allocated_storage * 1.25 <= 200 : can(regex("^arn:aws[a-z-]*:secretsmanager:", var.sage_ops_scratch_database_url_secret_arn))
    error_message = "Without sage_ops_scratch_database_url_secret_arn the nightly full restore runs on the run task's ephemeral storage, which holds 200 GiB at most: db_max_allocated_storage * 1.25 must fit, or set sage_ops_scratch_database_url_secret_arn to the Secrets Manager ARN of a scratch PostgreSQL 16 server's URL."
  }
}

variable "sage_ops_migrations_dir" {
  description = "SAGE_OPS_MIGRATIONS_DIR in the sage_ops tasks: the backend's Prisma migrations inside the sage_ops image, for the stand-alone migrate_database job (deploy_backend applies the deployed commit's own)."
  type        = string
  default     = "/opt/dagster/migrations"
}

variable "dagster_ui_url" {
  description = "The Dagster UI's URL as operators reach it (https://<UI DNS name>): incident reports link to their run there (SAGE_OPS_DAGSTER_URL). Null: reports carry no links."
  type        = string
  default     = null

  validation {
    condition     = var.dagster_ui_url == null || startswith(coalesce(var.dagster_ui_url, "https://"), "https://")
    error_message = "dagster_ui_url must be an https:// URL."
  }
}
