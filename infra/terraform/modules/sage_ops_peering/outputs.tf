output "peering_connection_id" {
  description = "VPC peering connection to the sage_ops stack."
  value       = aws_vpc_peering_connection.this.id
}
