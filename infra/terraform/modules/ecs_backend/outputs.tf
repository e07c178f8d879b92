output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.this.name
}

output "task_definition_family" {
  description = "Task-definition family sage_ops registers new revisions in."
  value       = aws_ecs_task_definition.this.family
}

output "container_name" {
  description = "Name of the backend container (the one whose image a deploy swaps)."
  value       = local.container_name
}

output "task_role_arn" {
  description = "Task role (passed by sage_ops when it registers a revision or runs a migration task)."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "Execution role (passed by sage_ops like the task role)."
  value       = aws_iam_role.execution.arn
}

output "log_group_name" {
  description = "Backend log group."
  value       = aws_cloudwatch_log_group.this.name
}
