output "identifier" {
  description = "DB instance identifier (DBInstanceIdentifier metric dimension)."
  value       = aws_db_instance.this.identifier
}

output "address" {
  description = "Endpoint hostname."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Endpoint port."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Application database name."
  value       = var.database_name
}

output "master_secret_arn" {
  description = "Secret with the master credentials (JSON)."
  value       = aws_secretsmanager_secret.master.arn
}

output "database_url_secret_arn" {
  description = "Secret with the backend DATABASE_URL."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "max_connections" {
  description = "max_connections set in the parameter group."
  value       = var.max_connections
}

output "ops_database_url_secret_arn" {
  description = "Secret with sage_ops's DATABASE_URL (no Prisma parameters)."
  value       = aws_secretsmanager_secret.ops_database_url.arn
}
