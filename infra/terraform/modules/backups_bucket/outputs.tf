output "id" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}

output "backup_prefix" {
  description = "Key prefix for backups."
  value       = var.backup_prefix
}

output "compute_log_prefix" {
  description = "Key prefix for Dagster compute logs."
  value       = var.compute_log_prefix
}
