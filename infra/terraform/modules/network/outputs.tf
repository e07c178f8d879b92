output "vpc_id" {
  description = "VPC ID."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "VPC CIDR block."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnet IDs (ALB, NAT), one per AZ."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnet IDs (ECS tasks, RDS, Redis), one per AZ."
  value       = aws_subnet.private[*].id
}

output "availability_zones" {
  description = "The two AZs the subnets span."
  value       = local.azs
}

output "private_route_table_ids" {
  description = "Private route tables, one per AZ (peering routes go here)."
  value       = aws_route_table.private[*].id
}
