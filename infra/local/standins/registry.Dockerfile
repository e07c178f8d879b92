# Stand-in for registry:2 (tagged so): Debian's docker-registry (the same distribution project),
# storing in /var/lib/registry and listening on :5000 like the official image (wget, as in its
# Alpine base, for the compose HEALTHCHECK).
ARG BASE_IMAGE=sage-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends docker-registry wget \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && mkdir -p /var/lib/registry \
    && printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\nhttp:\n  addr: :5000\n' \
        >/etc/docker/registry/config.yml
VOLUME /var/lib/registry
EXPOSE 5000
CMD ["docker-registry", "serve", "/etc/docker/registry/config.yml"]
