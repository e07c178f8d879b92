# The whole traffic chain in one file: internet -> ALB -> backend tasks -> RDS / Redis, and
# VPN/bastion -> Dagster UI's internal ALB (OIDC sign-in) -> sage_ops webserver; sage_ops tasks ->
# RDS. Every rule names its peer security group; nothing else is open.

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:Attached through a module output (alb, ecs_backend, rds, redis, sage_ops), which checkov does not follow (bridgecrewio/checkov#3010); tests/infra asserts the attachment.
  name        = "${var.name}-alb"
  description = "Public ALB: HTTP/HTTPS in from the allowed CIDRs, out only to backend tasks"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-alb" }
}

resource "aws_security_group" "backend" {
  #checkov:skip=CKV2_AWS_5:Attached through a module output (alb, ecs_backend, rds, redis, sage_ops), which checkov does not follow (bridgecrewio/checkov#3010); tests/infra asserts the attachment.
  name        = "${var.name}-backend"
  description = "Backend ECS tasks: in only from the ALB"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-backend" }
}

resource "aws_security_group" "rds" {
  #checkov:skip=CKV2_AWS_5:Attached through a module output (alb, ecs_backend, rds, redis, sage_ops), which checkov does not follow (bridgecrewio/checkov#3010); tests/infra asserts the attachment.
  name        = "${var.name}-rds"
  description = "PostgreSQL: in only from backend and sage_ops tasks"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-rds" }
}

resource "aws_security_group" "redis" {
  #checkov:skip=CKV2_AWS_5:Attached through a module output (alb, ecs_backend, rds, redis, sage_ops), which checkov does not follow (bridgecrewio/checkov#3010); tests/infra asserts the attachment.
  name        = "${var.name}-redis"
  description = "Redis: in only from backend tasks"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-redis" }
}

resource "aws_security_group" "sage_ops" {
  #checkov:skip=CKV2_AWS_5:Attached through a module output (alb, ecs_backend, rds, redis, sage_ops), which checkov does not follow (bridgecrewio/checkov#3010); tests/infra asserts the attachment.
  count       = var.sage_ops_enabled ? 1 : 0
  name        = "${var.name}-sage-ops"
  description = "sage_ops (Dagster) ECS tasks: webserver only from the UI ALB, gRPC among themselves"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-sage-ops" }
}

resource "aws_security_group" "dagster_ui" {
  #checkov:skip=CKV2_AWS_5:Attached through a module output (dagster_ui), which checkov does not follow (bridgecrewio/checkov#3010); tests/infra asserts the attachment.
  count       = var.sage_ops_enabled ? 1 : 0
  name        = "${var.name}-dagster-ui"
  description = "Internal ALB of the Dagster UI: HTTPS from the allowed CIDRs, out to the webserver and the IdP"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-dagster-ui" }
}

# --- ALB ---------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.alb_ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 on the public ALB only answers with a redirect to HTTPS (or serves bring-up traffic before a certificate exists).
  for_each          = toset(var.alb_ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from ${each.value} (redirected to HTTPS)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_backend" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To backend tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.backend_port
  to_port                      = var.backend_port
  referenced_security_group_id = aws_security_group.backend.id
}

# --- backend tasks -----------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "backend_from_alb" {
  security_group_id            = aws_security_group.backend.id
  description                  = "From the ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.backend_port
  to_port                      = var.backend_port
  referenced_security_group_id = aws_security_group.alb.id
}

# AWS APIs (ECR, Secrets Manager, CloudWatch Logs) through the NAT gateway.
resource "aws_vpc_security_group_egress_rule" "backend_https" {
  security_group_id = aws_security_group.backend.id
  description       = "HTTPS to AWS APIs via NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "backend_to_rds" {
  security_group_id            = aws_security_group.backend.id
  description                  = "To PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.rds.id
}

resource "aws_vpc_security_group_egress_rule" "backend_to_redis" {
  security_group_id            = aws_security_group.backend.id
  description                  = "To Redis"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.redis.id
}

# --- data stores (ingress only; they never initiate connections) -------------------------------

resource "aws_vpc_security_group_ingress_rule" "rds_from_backend" {
  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from backend tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.backend.id
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_sage_ops" {
  count                        = var.sage_ops_enabled ? 1 : 0
  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from sage_ops tasks (Dagster storage, backups)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.sage_ops[0].id
}

# Another stack's sage_ops (production's, through the sage_ops_peering module's VPC peering):
# admitted by its security group, found by name, so nothing else in that VPC gets in.
data "aws_security_group" "peer_sage_ops" {
  count = var.peer_sage_ops_name == null ? 0 : 1

  filter {
    name   = "group-name"
    values = ["${coalesce(var.peer_sage_ops_name, "none")}-sage-ops"]
  }
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_peer_sage_ops" {
  count                        = var.peer_sage_ops_name == null ? 0 : 1
  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from ${coalesce(var.peer_sage_ops_name, "none")} sage_ops tasks (migrations, backups) via VPC peering"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = data.aws_security_group.peer_sage_ops[0].id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_backend" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from backend tasks"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.backend.id
}

# --- sage_ops tasks ----------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "sage_ops_grpc" {
  count                        = var.sage_ops_enabled ? 1 : 0
  security_group_id            = aws_security_group.sage_ops[0].id
  description                  = "Dagster code-location gRPC from webserver and daemon"
  ip_protocol                  = "tcp"
  from_port                    = var.dagster_grpc_port
  to_port                      = var.dagster_grpc_port
  referenced_security_group_id = aws_security_group.sage_ops[0].id
}

# The webserver (the sage_ops gate in front of Dagster) only from the UI's internal ALB, which has
# signed the user in: no CIDR reaches the webserver directly.
resource "aws_vpc_security_group_ingress_rule" "sage_ops_ui" {
  count                        = var.sage_ops_enabled ? 1 : 0
  security_group_id            = aws_security_group.sage_ops[0].id
  description                  = "Dagster UI (gate) from the UI ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.dagster_webserver_port
  to_port                      = var.dagster_webserver_port
  referenced_security_group_id = aws_security_group.dagster_ui[0].id
}

resource "aws_vpc_security_group_egress_rule" "sage_ops_https" {
  count             = var.sage_ops_enabled ? 1 : 0
  security_group_id = aws_security_group.sage_ops[0].id
  description       = "HTTPS to AWS APIs and the git remote via NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# git over SSH (a deploy key in sage_ops_repo_credential_secret_arn, git@host:org/repo.git).
resource "aws_vpc_security_group_egress_rule" "sage_ops_git_ssh" {
  count             = var.sage_ops_enabled ? 1 : 0
  security_group_id = aws_security_group.sage_ops[0].id
  description       = "SSH to the git remote via NAT"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "sage_ops_to_rds" {
  count                        = var.sage_ops_enabled ? 1 : 0
  security_group_id            = aws_security_group.sage_ops[0].id
  description                  = "To PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.rds.id
}

# Other environments' databases through VPC peering (their stacks' sage_ops_peering module admits
# this security group by ID on their side).
resource "aws_vpc_security_group_egress_rule" "sage_ops_to_peer_rds" {
  for_each          = var.sage_ops_enabled ? toset(var.peer_database_cidrs) : toset([])
  security_group_id = aws_security_group.sage_ops[0].id
  description       = "To PostgreSQL in the peered VPC ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "sage_ops_grpc" {
  count                        = var.sage_ops_enabled ? 1 : 0
  security_group_id            = aws_security_group.sage_ops[0].id
  description                  = "To the Dagster code-location gRPC server"
  ip_protocol                  = "tcp"
  from_port                    = var.dagster_grpc_port
  to_port                      = var.dagster_grpc_port
  referenced_security_group_id = aws_security_group.sage_ops[0].id
}

# --- Dagster UI's internal ALB ------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "dagster_ui_https" {
  for_each          = var.sage_ops_enabled ? toset(var.dagster_ui_allowed_cidrs) : toset([])
  security_group_id = aws_security_group.dagster_ui[0].id
  description       = "Dagster UI sign-in (HTTPS) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "dagster_ui_to_webserver" {
  count                        = var.sage_ops_enabled ? 1 : 0
  security_group_id            = aws_security_group.dagster_ui[0].id
  description                  = "To the sage_ops webserver (gate)"
  ip_protocol                  = "tcp"
  from_port                    = var.dagster_webserver_port
  to_port                      = var.dagster_webserver_port
  referenced_security_group_id = aws_security_group.sage_ops[0].id
}

# authenticate-oidc: the ALB itself calls the identity provider's token and user-info endpoints.
resource "aws_vpc_security_group_egress_rule" "dagster_ui_to_idp" {
  count             = var.sage_ops_enabled ? 1 : 0
  security_group_id = aws_security_group.dagster_ui[0].id
  description       = "HTTPS to the identity provider's token and user-info endpoints via NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
