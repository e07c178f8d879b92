#!/bin/sh
# @prisma/client ships every runtime for every database (74 MB: the Rust-engine loaders, the edge,
# React Native and Wasm-engine runtimes, query engines and compilers for six providers). A client
# generated with engineType "client" loads runtime/client.js and the query compiler generated
# beside it in node_modules/.prisma/client; the rest goes. Fails if that client no longer loads.
set -eu
modules="${1:-node_modules}"
runtime="$modules/@prisma/client/runtime"
[ -f "$runtime/client.js" ] || { echo "prune-prisma-client: no $runtime/client.js" >&2; exit 1; }
find "$runtime" -type f ! -name 'client.*' -delete
(cd "$modules/.." && node -e 'require("@prisma/client").PrismaClient')
