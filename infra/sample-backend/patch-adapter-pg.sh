#!/bin/sh
# Upstream bug prisma/orm#27403: @prisma/adapter-pg 6.19.3 has no column type for PostgreSQL's
# `name` (OID 19), which Prisma's schema engine reads while deploying, so `prisma migrate deploy`
# fails with "Column type 'name' could not be deserialized from the database". Map it to text,
# as the adapter does for varchar. Idempotent; fails if the code it patches has changed.
set -eu
dist="${1:-node_modules}/@prisma/adapter-pg/dist"
for file in "$dist/index.js" "$dist/index.mjs"; do
    grep -q 'case 19: /\* name' "$file" && continue
    [ "$(grep -c '^ *case ScalarColumnType.TEXT:$' "$file")" = 1 ] || {
        echo "patch-adapter-pg: unexpected $file (adapter version changed?)" >&2
        exit 1
    }
    sed -i 's|^\( *\)case ScalarColumnType.TEXT:$|\1case 19: /* name, prisma/orm#27403 */\n&|' "$file"
done
