# Stand-in for the frontend's dev image (sage-frontend:dev): Debian's nodejs and the real pnpm
# (copied from the sample backend's host-installed dev dependencies), serving /app/src on :5173
# with `pnpm dev --host 0.0.0.0` as compose runs it. Files are read on every request, so an
# edit under the mounted src/ is served at once.
ARG BASE_IMAGE=sage-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin node
COPY pnpm/ /opt/pnpm/
RUN ln -s /opt/pnpm/bin/pnpm.cjs /usr/local/bin/pnpm
WORKDIR /app
COPY app/ ./
USER node
EXPOSE 5173
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD ["node", "-e", "require('http').get('http://127.0.0.1:5173/', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
CMD ["pnpm", "dev", "--host", "0.0.0.0"]
