# terraform init -reconfigure -backend-config=environments/production.s3.tfbackend
# terraform apply -var-file=environments/production.tfvars
environment        = "production"
region             = "us-west-2"
availability_zones = ["us-west-2a", "us-west-2b"]
vpc_cidr           = "10.40.0.0/16"

# Required in production: HTTPS listener + HTTP->HTTPS redirect.
certificate_arn = "arn:aws:acm:us-west-2:111122223333:certificate/REPLACE-ME"

single_nat_gateway  = false
deletion_protection = true

# Set after the first push (README step 4); afterwards sage_ops decides what runs.
# backend_image  = "111122223333.dkr.ecr.us-west-2.amazonaws.com/sage-backend@sha256:..."
# sage_ops_image = "111122223333.dkr.ecr.us-west-2.amazonaws.com/sage-ops@sha256:..."

backend_desired_count              = 3
backend_cpu                        = 1024
backend_memory                     = 2048
backend_deployment_minimum_percent = 100
backend_deployment_maximum_percent = 200
backend_db_connection_limit        = 10

db_instance_class    = "db.r6g.large"
db_allocated_storage = 100
# Autoscaling ceiling; also what the nightly full restore must fit on the run task's ephemeral
# storage (1.25 x, 200 GiB at most). Above 160, set sage_ops_scratch_database_url_secret_arn.
db_max_allocated_storage = 160
db_multi_az              = true
db_backup_retention_days = 14
db_max_connections       = 300

redis_node_type = "cache.r7g.large"
redis_num_nodes = 2

alerts_topic_name         = "sage-alerts"
alert_email_subscriptions = []

# This stack owns the shared ECR repositories and runs the one sage_ops that promotes
# staging -> production.
create_ecr_repositories      = true
sage_ops_enabled             = true
sage_ops_deploy_environments = ["staging", "production"]
# The backend repository the git sensor watches (README step 0) and its credential: a token for
# https, a deploy key for SSH (git@host:org/repo.git), as a Secrets Manager secret ARN.
sage_ops_repo                       = "https://github.com/REPLACE-ME/sage.git"
sage_ops_repo_credential_secret_arn = "arn:aws:secretsmanager:us-west-2:111122223333:secret:sage/sage-ops/repo-credential-REPLACE"
# Incident reports link to their run in the Dagster UI.
dagster_ui_url = "https://ops.sage.internal"
# Staging's VPC (staging.tfvars vpc_cidr), peered by the staging stack: its database on 5432.
sage_ops_peer_vpc_cidrs  = { staging = "10.41.0.0/16" }
dagster_ui_allowed_cidrs = [] # e.g. ["10.8.0.0/16"] for the VPN

# Dagster UI sign-in (README "Sign-in for the Dagster UI"): Cognito shown; any OIDC provider works.
dagster_ui_certificate_arn = "arn:aws:acm:us-west-2:111122223333:certificate/REPLACE-ME-UI"
dagster_ui_oidc = {
  issuer                 = "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_REPLACEME"
  authorization_endpoint = "https://sage-ops.auth.us-west-2.amazoncognito.com/oauth2/authorize"
  token_endpoint         = "https://sage-ops.auth.us-west-2.amazoncognito.com/oauth2/token"
  user_info_endpoint     = "https://sage-ops.auth.us-west-2.amazoncognito.com/oauth2/userInfo"
  client_id              = "REPLACE-ME"
  client_secret_arn      = "arn:aws:secretsmanager:us-west-2:111122223333:secret:sage/dagster-ui/oidc-client-secret-REPLACE"
}
dagster_ui_allowed_email_domains = ["sage.ai"]
dagster_ui_admin_emails          = [] # Cognito's user info carries no groups: list the admins here
dagster_ui_admin_groups          = []
