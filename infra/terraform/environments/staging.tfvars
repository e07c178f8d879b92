# terraform init -reconfigure -backend-config=environments/staging.s3.tfbackend
# terraform apply -var-file=environments/staging.tfvars
environment        = "staging"
region             = "us-west-2"
availability_zones = ["us-west-2a", "us-west-2b"]
vpc_cidr           = "10.41.0.0/16"

# certificate_arn = "arn:aws:acm:us-west-2:111122223333:certificate/..."

# Cheaper than production, same modules.
single_nat_gateway  = true
deletion_protection = false

# backend_image = "111122223333.dkr.ecr.us-west-2.amazonaws.com/sage-backend@sha256:..."

backend_desired_count              = 1
backend_cpu                        = 512
backend_memory                     = 1024
backend_deployment_minimum_percent = 100
backend_deployment_maximum_percent = 200
backend_db_connection_limit        = 5

db_instance_class        = "db.t4g.medium"
db_allocated_storage     = 20
db_max_allocated_storage = 100
db_multi_az              = false
db_backup_retention_days = 7
db_max_connections       = 100

redis_node_type = "cache.t4g.small"
redis_num_nodes = 2

log_retention_days = 90

# One topic per environment (SNS names are unique per account and region).
alerts_topic_name = "sage-alerts-staging"

# Repositories and sage_ops live in the production stack (apply it first).
create_ecr_repositories = false
sage_ops_enabled        = false
# Production's sage_ops migrates this database: peer with its VPC, admit its sage_ops tasks.
sage_ops_peer_environment = "production"
