#!/usr/bin/env bash
# The streaming replica's entrypoint (compose.yaml's postgres-replica).
#
# On the first start, with an empty data directory, it copies the primary with
# pg_basebackup: --write-recovery-conf leaves standby.signal and a primary_conninfo (with
# the replication password, in postgresql.auto.conf, mode 0600, inside the replica's own
# volume), so PostgreSQL starts as a hot standby that streams from the primary through
# the slot primary-init.sh made. Then, as on every later start, it hands over to the
# image's own entrypoint, which finds a data directory, skips initdb, and starts the
# server as the postgres user.
#
# Runs as root (the image's default user), so the copy is made as postgres with gosu,
# which the image ships. pg_basebackup removes what it wrote if it fails, so a failed
# first start is retried from scratch on the next.
set -Eeuo pipefail

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "replica: copying the primary at $PRIMARY_HOST (pg_basebackup)"
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    PGPASSWORD="$POSTGRES_REPLICATION_PASSWORD" PGAPPNAME=replica_1 gosu postgres pg_basebackup \
        --host "$PRIMARY_HOST" --port 5432 --username replicator \
        --pgdata "$PGDATA" --wal-method stream --slot replica_1 \
        --write-recovery-conf --checkpoint fast
    echo "replica: copied; starting as a hot standby"
fi

exec docker-entrypoint.sh "$@"
