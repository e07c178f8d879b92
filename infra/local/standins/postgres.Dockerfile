# Stand-in for postgres:16-alpine (tagged so): PostgreSQL 16 from the pgserver wheel's binaries
# on the Debian base, with the official image's interface: POSTGRES_USER/PASSWORD/DB, initdb on
# an empty /var/lib/postgresql/data, /docker-entrypoint-initdb.d/*.sql run once, pg_isready.
ARG BASE_IMAGE=sage-local/debian:bookworm
FROM ${BASE_IMAGE}
# The wheel's own layout (its binaries find libpq relative to themselves).
COPY pgserver/ /opt/pgserver/
RUN useradd --system --user-group --home-dir /var/lib/postgresql --create-home postgres \
    && mkdir -p /docker-entrypoint-initdb.d /run/postgresql \
    && chown postgres:postgres /run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/opt/pgserver/pgserver/pginstall/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    PGHOST=/run/postgresql
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
