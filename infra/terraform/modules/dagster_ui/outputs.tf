output "alb_arn" {
  description = "The internal ALB; the gate trusts identity tokens signed by it only."
  value       = aws_lb.this.arn
}

output "dns_name" {
  description = "DNS name of the internal ALB (point the UI's DNS record here)."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route 53 zone of the ALB (for alias records)."
  value       = aws_lb.this.zone_id
}

output "target_group_arn" {
  description = "Target group of the webserver (gate) task."
  value       = aws_lb_target_group.webserver.arn
}

output "gate_environment" {
  description = "SAGE_OPS_GATE_* settings of the webserver container, matching this ALB and provider."
  value = {
    SAGE_OPS_GATE_ALB_ARN         = aws_lb.this.arn
    SAGE_OPS_GATE_ISSUER          = var.oidc.issuer
    SAGE_OPS_GATE_CLIENT_ID       = var.oidc.client_id
    SAGE_OPS_GATE_ALLOWED_DOMAINS = join(",", var.allowed_email_domains)
    SAGE_OPS_GATE_ADMIN_EMAILS    = join(",", var.admin_emails)
    SAGE_OPS_GATE_ADMIN_GROUPS    = join(",", var.admin_groups)
    SAGE_OPS_GATE_GROUPS_CLAIM    = var.groups_claim
  }
}
