#!/bin/sh
# First start of the `postgres` container (docker-entrypoint-initdb.d): a role that may stream
# the WAL (the cluster profile's replica) with REPLICATION_PASSWORD, and the pg_hba line for it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
