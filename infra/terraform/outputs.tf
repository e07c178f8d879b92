output "alb_dns_name" {
  description = "Public DNS name of the ALB (point the API's DNS record here)."
  value       = module.alb.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone of the ALB, for an alias record."
  value       = module.alb.zone_id
}

output "ecr_repository_urls" {
  description = "Image repositories (backend, sage_ops)."
  value       = { for k, r in local.ecr : k => r.url }
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = module.ecs_cluster.name
}

output "backend_service_name" {
  description = "Backend ECS service; sage_ops target ecs://<cluster>/<service>."
  value       = module.ecs_backend.service_name
}

output "backend_target" {
  description = "Deploy target URL for sage_ops."
  value       = "ecs://${module.ecs_cluster.name}/${module.ecs_backend.service_name}"
}

output "private_subnet_ids" {
  description = "Private subnets (for one-off run-task calls)."
  value       = module.network.private_subnet_ids
}

output "backend_security_group_id" {
  description = "Backend tasks security group (for one-off run-task calls)."
  value       = module.security_groups.backend_id
}

output "sage_ops_security_group_id" {
  description = "sage_ops tasks security group (for the db-init run-task call)."
  value       = module.security_groups.sage_ops_id
}

output "rds_endpoint" {
  description = "PostgreSQL endpoint host."
  value       = module.rds.address
}

output "rds_master_secret_arn" {
  description = "Secrets Manager ARN of the master credentials."
  value       = module.rds.master_secret_arn
}

output "redis_endpoint" {
  description = "Redis primary endpoint host."
  value       = module.redis.primary_endpoint
}

output "alerts_topic_arn" {
  description = "SNS topic of every alarm (SAGE_OPS_SNS_TOPIC_ARN)."
  value       = module.alarms.topic_arn
}

output "alarm_names" {
  description = "CloudWatch alarms of this environment."
  value       = module.alarms.alarm_names
}

output "backups_bucket" {
  description = "Backup bucket (null when sage_ops is not in this stack)."
  value       = one(module.backups_bucket[*].id)
}

output "sage_ops" {
  description = "sage_ops endpoints and the values its production dagster.yaml reads (null when disabled)."
  value = var.sage_ops_enabled ? {
    ui_alb_dns_name         = module.dagster_ui[0].dns_name
    ui_alb_zone_id          = module.dagster_ui[0].zone_id
    run_launcher            = module.sage_ops[0].run_launcher
    db_init_task_definition = module.sage_ops[0].db_init_task_definition
    log_group               = module.sage_ops[0].log_group_name
    services                = module.sage_ops[0].service_names
  } : null
}
