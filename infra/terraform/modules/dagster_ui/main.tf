# The Dagster UI's only way in: an internal ALB whose HTTPS listener signs every user in with the
# OIDC identity provider (authenticate-oidc) before forwarding to the sage_ops webserver task. The
# task runs the sage_ops gate, which verifies the identity the ALB signs into x-amzn-oidc-data
# (ES256, this ALB as signer) on every request, applies the admin-only rules and writes the audit
# trail; the webserver's security group admits only this ALB.

# Read at plan time from Secrets Manager: the client secret is never a variable or a file in the
# repository. It is stored in the (encrypted, access-restricted) state, as every listener secret is.
data "aws_secretsmanager_secret_version" "client_secret" {
  secret_id = var.oidc.client_secret_arn
}

resource "aws_lb" "this" {
  name                       = "${var.name}-ui"
  load_balancer_type         = "application"
  internal                   = true
  subnets                    = var.subnet_ids
  security_groups            = [var.security_group_id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # The UI keeps a GraphQL websocket open; Dagster pings it well within two minutes.
  idle_timeout = 120

  access_logs {
    enabled = true
    bucket  = var.access_log_bucket
    prefix  = var.access_log_prefix
  }
}

resource "aws_lb_target_group" "webserver" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the internal ALB; ALB->task traffic stays in private subnets and the webserver SG admits only this ALB's SG.
  name                 = "${var.name}-ui"
  vpc_id               = var.vpc_id
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = var.target_port
  deregistration_delay = 30

  # The gate's own health endpoint: the only path that answers without a signed-in identity.
  health_check {
    enabled             = true
    path                = var.health_check_path
    matcher             = "200"
    protocol            = "HTTP"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# The only listener: sign in first, then forward. There is no HTTP listener to go around it.
resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type  = "authenticate-oidc"
    order = 1

    authenticate_oidc {
      issuer                     = var.oidc.issuer
      authorization_endpoint     = var.oidc.authorization_endpoint
      token_endpoint             = var.oidc.token_endpoint
      user_info_endpoint         = var.oidc.user_info_endpoint
      client_id                  = var.oidc.client_id
      client_secret              = data.aws_secretsmanager_secret_version.client_secret.secret_string
      scope                      = var.oidc.scope
      session_cookie_name        = "sage-ops-ui"
      session_timeout            = var.session_timeout_s
      on_unauthenticated_request = "authenticate"
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.webserver.arn
  }
}
