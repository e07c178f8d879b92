#!/usr/bin/env bash
# Local stand-ins for the production services the deploy pipeline talks to, idempotently:
# Docker Engine (Debian docker.io, started as root), a swarm of one node (the local deploy
# target), and an OCI registry on 127.0.0.1:5000 (Debian docker-registry; the local ECR).
set -euo pipefail
STATE="${SAGE_OPS_STATE_DIR:-$(pwd)/.state}/services"
mkdir -p "$STATE"

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-registry >/dev/null || need+=(docker-registry)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd"
    nohup dockerd >"$STATE/dockerd.log" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$STATE/dockerd.log"; exit 1; }
fi

if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi

if ! curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
    echo "starting docker-registry on 127.0.0.1:5000"
    cat >"$STATE/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YAML
    nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
    for _ in $(seq 40); do curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1 && break; sleep 0.25; done
    curl -fsS http://127.0.0.1:5000/v2/ >/dev/null || { tail -20 "$STATE/registry.log"; exit 1; }
fi
echo "docker $(docker info --format '{{.ServerVersion}}'), swarm active, registry 127.0.0.1:5000"
