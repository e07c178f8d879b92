output "alb_id" {
  description = "ALB security group."
  value       = aws_security_group.alb.id
}

output "backend_id" {
  description = "Backend ECS tasks security group."
  value       = aws_security_group.backend.id
}

output "rds_id" {
  description = "RDS security group."
  value       = aws_security_group.rds.id
}

output "redis_id" {
  description = "Redis security group."
  value       = aws_security_group.redis.id
}

output "sage_ops_id" {
  description = "sage_ops ECS tasks security group (null when sage_ops is disabled)."
  value       = one(aws_security_group.sage_ops[*].id)
}

output "dagster_ui_id" {
  description = "Security group of the Dagster UI's internal ALB (null when sage_ops is disabled)."
  value       = one(aws_security_group.dagster_ui[*].id)
}
