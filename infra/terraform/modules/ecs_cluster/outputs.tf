output "name" {
  description = "Cluster name."
  value       = aws_ecs_cluster.this.name
}

output "arn" {
  description = "Cluster ARN."
  value       = aws_ecs_cluster.this.arn
}
