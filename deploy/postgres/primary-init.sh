#!/usr/bin/env bash
# The primary's replication set-up, run once, when its data directory is first made: the
# postgres image runs /docker-entrypoint-initdb.d/*.sh then, as the postgres user, against
# a server listening on its Unix socket only. compose.yaml mounts this file there.
#
# It makes the role the replica copies and follows the primary as, and the physical
# replication slot the replica streams through (the primary keeps the WAL the replica has
# not received yet, up to max_slot_wal_keep_size), and lets that role connect for
# replication from any address on the compose network.
#
# No `set -u` and no `exit`: the image sources a script that is not executable, so this
# one must be safe to run inside the image's own entrypoint.
set -eo pipefail

psql --no-psqlrc --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set password="$POSTGRES_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SELECT pg_create_physical_replication_slot('replica_1');
SQL

# The image's own line, `host all all all scram-sha-256`, does not cover replication
# connections: they need a line of their own.
echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
