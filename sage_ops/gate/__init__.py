"""The gate in front of the Dagster UI: who is asking (the load balancer's signed identity, or a
local user), what they may do (destructive and production jobs only for admins), and a record of
every change they make (the `sage_ops/launched_by` run tag and an append-only audit log)."""
