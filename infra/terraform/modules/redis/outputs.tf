output "primary_endpoint" {
  description = "Primary endpoint hostname."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "redis_url_secret_arn" {
  description = "Secret with the backend REDIS_URL."
  value       = aws_secretsmanager_secret.redis_url.arn
}
