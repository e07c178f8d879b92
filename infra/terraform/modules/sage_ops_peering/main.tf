# This stack's database, reachable from the sage_ops tasks of the stack that runs sage_ops (one per
# account, in production): staging's migrations and their pre-migration backups run there. A VPC
# peering connection requested and accepted here (same account and region) and routes both ways
# between the private subnets; the security_groups module admits only the peer's sage_ops
# security group to RDS, so nothing else in the peer VPC gets in. The peer is found by the
# sage-<env> naming convention, like sage_ops's deploy grants; apply its stack first.

data "aws_vpc" "peer" {
  tags = { Name = var.peer_name }
}

data "aws_route_tables" "peer_private" {
  vpc_id = data.aws_vpc.peer.id

  filter {
    name   = "tag:Name"
    values = ["${var.peer_name}-private-*"]
  }
}

resource "aws_vpc_peering_connection" "this" {
  vpc_id      = var.vpc_id
  peer_vpc_id = data.aws_vpc.peer.id
  auto_accept = true # same account and region: no separate accepter

  # The RDS endpoint's name resolves to its private address from the peer VPC too.
  accepter {
    allow_remote_vpc_dns_resolution = true
  }
  requester {
    allow_remote_vpc_dns_resolution = true
  }

  tags = { Name = "${var.name}-to-${var.peer_name}" }
}

resource "aws_route" "to_peer" {
  count                     = length(var.route_table_ids)
  route_table_id            = var.route_table_ids[count.index]
  destination_cidr_block    = data.aws_vpc.peer.cidr_block
  vpc_peering_connection_id = aws_vpc_peering_connection.this.id
}

resource "aws_route" "from_peer" {
  for_each                  = toset(data.aws_route_tables.peer_private.ids)
  route_table_id            = each.value
  destination_cidr_block    = var.vpc_cidr
  vpc_peering_connection_id = aws_vpc_peering_connection.this.id
}
