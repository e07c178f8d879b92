# Consumers (ALB, S3 access logging, flow logs) verify write access when they are configured, so
# they must not see the bucket before its policy exists.
output "id" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.id
  depends_on  = [aws_s3_bucket_policy.this]
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}

output "alb_prefix" {
  description = "Key prefix ALB access logs are written under."
  value       = "alb"
}

output "s3_access_log_prefix" {
  description = "Key prefix for S3 server access logs (append the source bucket name)."
  value       = "s3/"
}

output "flow_log_arn" {
  description = "Destination ARN (with prefix) for VPC flow logs."
  value       = "${aws_s3_bucket.this.arn}/vpc-flow-logs/"
  depends_on  = [aws_s3_bucket_policy.this]
}
