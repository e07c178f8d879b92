# Idempotent: creates the Dagster role and database on the shared RDS instance, then (re)sets the
# role's password from DAGSTER_PG_PASSWORD. Run as the one-off ECS task <name>-sage-ops-db-init.
set -eu
psql -v ON_ERROR_STOP=1 -v role="$DAGSTER_PG_USER" -v db="$DAGSTER_PG_DB" <<'SQL'
-- PostgreSQL 16: the creating (non-superuser) role needs SET on the new role to make it an owner.
SET createrole_self_grant = 'set, inherit';
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db')\gexec
SQL
# Without a tty psql reads the new password from stdin and sends only its SCRAM verifier.
printf '%s\n%s\n' "$DAGSTER_PG_PASSWORD" "$DAGSTER_PG_PASSWORD" \
    | psql -v ON_ERROR_STOP=1 -c "\\password \"$DAGSTER_PG_USER\""
echo "sage_ops db-init: role and database '$DAGSTER_PG_DB' ready"
