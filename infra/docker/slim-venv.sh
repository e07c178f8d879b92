#!/bin/sh
# Removes from a venv what sage_ops' processes never load, so every run's container pulls less:
# - the packages' own test suites (pandas/tests alone is 46 MB, numpy's and matplotlib's 20 MB);
#   only directories named `tests`: some `test` packages (dagster._utils.test) are imported at run time;
# - the PostgreSQL headers and static libraries of the pgserver wheel (for compiling extensions);
# - setuptools and wheel (build tools; pip goes after sage_ops is installed).
# Then it checks that sage_ops' dependencies still import.
set -eu
venv="$1"
site="$(echo "$venv"/lib/python3*/site-packages)"
find "$site" -mindepth 2 -type d -name tests -prune -exec rm -rf {} +
rm -rf "$site/pgserver/pginstall/include"
find "$site/pgserver/pginstall/lib" -name '*.a' -delete
"$venv/bin/pip" uninstall -q -y setuptools wheel
"$venv/bin/python" -c 'import dagster, dagster_aws, dagster_docker, dagster_postgres, dagster_webserver, pandas, matplotlib, boto3, psycopg, pgserver, jwt, anthropic'
