data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

# AWS's managed policy for Enhanced Monitoring only lets RDS write its own RDSOSMetrics log group.
resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${var.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-postgres"
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-postgres16-"
  family      = "postgres16"
  description = "${var.name}: PostgreSQL 16 with explicit max_connections, TLS only, DDL and slow-query logging"

  # Explicit rather than RDS's memory-derived default, so the connection-saturation alarm and the
  # deploy-time sizing check (variables.tf) work from one number.
  parameter {
    name         = "max_connections"
    value        = tostring(var.max_connections)
    apply_method = "pending-reboot"
  }

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # DDL is what migrations change; logging it gives incident triage the "what changed" trail.
  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "random_password" "master" {
  length  = 40
  special = true
  # RDS forbids / @ " and space; the rest must also survive a URL without escaping.
  override_special = "-_~"
}

resource "aws_db_instance" "this" {
  identifier     = "${var.name}-postgres"
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.instance_class

  db_name  = var.database_name
  username = var.username
  password = random_password.master.result
  port     = 5432

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  multi_az               = var.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [var.security_group_id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  allow_major_version_upgrade         = false
  backup_retention_period             = var.backup_retention_days
  backup_window                       = "02:00-02:30"
  maintenance_window                  = "sun:04:00-sun:05:00"
  copy_tags_to_snapshot               = true
  delete_automated_backups            = false
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-postgres-final"

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7

  depends_on = [aws_cloudwatch_log_group.postgresql]
}

# Created ahead of RDS so retention and encryption are ours, not the service defaults.
resource "aws_cloudwatch_log_group" "postgresql" {
  for_each          = toset(["postgresql", "upgrade"])
  name              = "/aws/rds/instance/${var.name}-postgres/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# --- credentials -------------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "master" {
  #checkov:skip=CKV2_AWS_57:The password is Terraform-generated; rotate by replacing random_password.master (README), a rotation Lambda would drift from state.
  name                    = "${var.name}/rds/master"
  description             = "${var.name} PostgreSQL master credentials (JSON: username, password, host, port, dbname)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "master" {
  secret_id = aws_secretsmanager_secret.master.id
  secret_string = jsonencode({
    engine   = "postgres"
    username = var.username
    password = random_password.master.result
    host     = aws_db_instance.this.address
    port     = aws_db_instance.this.port
    dbname   = var.database_name
  })
}

# The backend's DATABASE_URL: TLS required and Prisma's pool capped per task (see the 53300
# sizing check in the root variables).
resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:Derived from the master secret; rotated together with it.
  name                    = "${var.name}/backend/database-url"
  description             = "${var.name} backend DATABASE_URL"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id = aws_secretsmanager_secret.database_url.id
  secret_string = format(
    "postgresql://%s:%s@%s:%d/%s?sslmode=require&connection_limit=%d",
    var.username, random_password.master.result, aws_db_instance.this.address,
    aws_db_instance.this.port, var.database_name, var.connection_limit,
  )
}

# sage_ops's DATABASE_URL: plain libpq URI (libpq rejects Prisma's connection_limit parameter).
resource "aws_secretsmanager_secret" "ops_database_url" {
  #checkov:skip=CKV2_AWS_57:Derived from the master secret; rotated together with it.
  name                    = "${var.name}/sage-ops/database-url"
  description             = "${var.name} DATABASE_URL for sage_ops (backups, migrations)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "ops_database_url" {
  secret_id = aws_secretsmanager_secret.ops_database_url.id
  secret_string = format(
    "postgresql://%s:%s@%s:%d/%s?sslmode=require",
    var.username, random_password.master.result, aws_db_instance.this.address,
    aws_db_instance.this.port, var.database_name,
  )
}
