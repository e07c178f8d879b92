#!/bin/sh
# Assembles the runtime image's whole filesystem in DEST (the final stage is FROM scratch and copies
# it): the node binary at /usr/local/bin/node, every shared library it links at the path the
# dynamic loader looks for it (glibc on Debian, musl on Alpine: `ldd` names both), a passwd/group
# with root and the non-root `node` user (uid 1000), and the HEALTHCHECK's probe, run by node
# itself: /usr/local/lib/healthcheck.js (GET /health on $PORT). No shell, no package manager.
#   runtime-rootfs.sh /usr/local/bin/node /runtime
set -eu
node="$1" dest="$2"
mkdir -p "$dest/usr/local/bin" "$dest/etc" "$dest/tmp"
cp "$node" "$dest/usr/local/bin/node"
for lib in $(ldd "$node" | grep -o '/[^ ]*'); do
    mkdir -p "$dest$(dirname "$lib")"
    cp -L "$lib" "$dest$lib"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/app:/sbin/nologin\n' \
    >"$dest/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$dest/etc/group"
chmod 1777 "$dest/tmp"
mkdir -p "$dest/usr/local/lib"
cat >"$dest/usr/local/lib/healthcheck.js" <<'JS'
require("node:http")
  .get(`http://127.0.0.1:${process.env.PORT || 3000}/health`, (res) =>
    process.exit(res.statusCode === 200 ? 0 : 1),
  )
  .on("error", () => process.exit(1))
  .setTimeout(2500, () => process.exit(1));
JS
# The binary must start from DEST alone: nothing it needs was left out.
chroot "$dest" /usr/local/bin/node -e 'process.exit(0)' \
    || { echo "runtime-rootfs: node does not start in $dest" >&2; exit 1; }
