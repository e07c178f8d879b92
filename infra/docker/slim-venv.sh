#!/bin/sh
# Removes from a venv what sage_ops' processes never load, so every run's container pulls less:
# - the packages' own test suites (pandas/tests alone is 46 MB, numpy's and matplotlib's 20 MB);
#   only directories named `tests`: some `test` packages (dagster._utils.test) are imported at run
#   time;
# - the PostgreSQL headers and static libraries of the pgserver wheel (for compiling extensions),
#   and its programs other than the server's (postgres, initdb, pg_ctl: the scratch database) and
#   the clients sage_ops runs (pg_dump, pg_restore, psql, pg_isready);
# - the web UI's source maps (for a browser's developer tools), botocore's API examples (docs),
#   and type stubs (.pyi, for type checkers);
# - botocore's API models of the AWS services sage_ops never calls (26 MB for 450 services; a
#   client of a service left out fails at once with UnknownServiceError naming it):
#   AWS_SERVICES are those sage_ops and Dagster's ECS run launcher call, and those botocore's
#   credential providers call (sts, sso, sso-oidc, signin); tests/infra/test_slim_venv.py holds
#   the list to the code;
# - Pillow's AVIF codec (5 MB; matplotlib writes PNG, and Pillow reports AVIF as unsupported);
# - numpy's build tools (distutils, f2py: for compiling extensions);
# - two of the copies of the time zone database: pytz's and the tzdata package's zoneinfo become
#   links to the system's /usr/share/zoneinfo (Debian's tzdata, in every image this builds on);
# - setuptools and wheel (build tools; pip goes after sage_ops is installed);
# - debug symbols of the compiled modules (strip --strip-debug; uvloop's alone are 12 MB), each
#   stripped library then loaded once to prove it still loads;
# - the dependencies' Python sources, keeping their byte code (the .pyc beside each module, which
#   Python imports without the source): tracebacks into a dependency lose the source line, not the
#   file and line number. Alembic's migration scripts keep their sources: Dagster's storage reads
#   them at run time; so does pip (its build subprocess), which leaves once sage_ops, installed
#   later with its sources, is in.
# Then it checks that sage_ops' dependencies still import.
set -eu
venv="$1"
site="$(echo "$venv"/lib/python3*/site-packages)"
find "$site" -mindepth 2 -type d -name tests -prune -exec rm -rf {} +
rm -rf "$site/pgserver/pginstall/include"
find "$site/pgserver/pginstall/lib" -name '*.a' -delete
find "$site/pgserver/pginstall/bin" -type f ! -name postgres ! -name initdb ! -name pg_ctl \
    ! -name pg_dump ! -name pg_restore ! -name psql ! -name pg_isready -delete
find "$site" \( -name '*.map' -o -name 'examples-1.json' -o -name '*.pyi' \) -type f -delete
AWS_SERVICES="cloudwatch codebuild ec2 ecr ecs elbv2 kms logs s3 secretsmanager sns
    sts sso sso-oidc signin"
for model in "$site"/botocore/data/*/; do
    case " $(echo $AWS_SERVICES) " in *" $(basename "$model") "*) ;; *) rm -rf "$model" ;; esac
done
rm -f "$site"/PIL/_avif.* "$site"/pillow.libs/libavif-*
rm -rf "$site/numpy/distutils" "$site/numpy/f2py"
for zoneinfo in "$site/pytz/zoneinfo" "$site/tzdata/zoneinfo"; do
    rm -rf "$zoneinfo" && ln -s /usr/share/zoneinfo "$zoneinfo"
done
"$venv/bin/pip" uninstall -q -y setuptools wheel
# Not the libraries auditwheel vendored or re-pointed (RPATH): patchelf rewrote their headers, and
# strip would leave them unloadable ("ELF load command address/offset not page-aligned").
find "$site" -name '*.so*' -type f ! -path '*.libs/*' ! -path '*/pginstall/*' | while read -r lib; do
    readelf -d "$lib" | grep -q 'R[UN]*PATH' || echo "$lib"
done >/tmp/strip-list
xargs strip --strip-debug </tmp/strip-list
"$venv/bin/python" -c '
import ctypes, os, sys
failed = []
for path in open("/tmp/strip-list").read().split():
    try:
        ctypes.CDLL(path)
    except OSError as error:
        failed.append(str(error))
print(*failed, sep="\n", file=sys.stderr)
os._exit(1 if failed else 0)'
rm /tmp/strip-list
"$venv/bin/python" -m compileall -q -b -j 0 -x '/alembic/|/site-packages/pip/' "$site"
find "$site" -name '*.py' -type f ! -path '*/alembic/*' ! -path "$site/pip/*" -delete
find "$site" -name __pycache__ -type d ! -path '*/alembic/*' ! -path "$site/pip/*" -prune \
    -exec rm -rf {} +
"$venv/bin/python" -c 'import dagster, dagster_aws, dagster_docker, dagster_postgres, dagster_webserver, pandas, matplotlib, boto3, psycopg, pgserver, jwt
import importlib.resources, pytz
assert pytz.timezone("Europe/Paris").zone and importlib.resources.files("tzdata.zoneinfo").joinpath("UTC").read_bytes()'
