output "run_launcher" {
  description = "Values dagster.yaml's EcsRunLauncher reads (also set as env vars in every container)."
  value = {
    cluster            = var.cluster_name
    task_role_arn      = aws_iam_role.run.arn
    execution_role_arn = aws_iam_role.execution.arn
    task_definition    = aws_ecs_task_definition.run.family
  }
}

output "db_init_task_definition" {
  description = "One-off task that creates the Dagster role and database."
  value       = aws_ecs_task_definition.db_init.family
}

output "dagster_db_secret_arn" {
  description = "Dagster storage credentials."
  value       = aws_secretsmanager_secret.dagster_db.arn
}

output "log_group_name" {
  description = "sage_ops log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "service_names" {
  description = "ECS services (webserver, daemon, code)."
  value       = { for k, s in aws_ecs_service.this : k => s.name }
}
