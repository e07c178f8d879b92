output "dns_name" {
  description = "Public DNS name of the ALB."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route 53 zone of the ALB (for alias records)."
  value       = aws_lb.this.zone_id
}

output "arn_suffix" {
  description = "ALB ARN suffix, the LoadBalancer dimension of AWS/ApplicationELB metrics."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn" {
  description = "Backend target group."
  value       = aws_lb_target_group.backend.arn
}

output "listener_arn" {
  description = "The listener that forwards to the backend (HTTPS when a certificate is set)."
  value       = local.https ? aws_lb_listener.https[0].arn : aws_lb_listener.http_forward[0].arn
}
