#!/bin/sh
# The cluster profile's `postgres-replica`: on first start, copy the primary with
# pg_basebackup -R (writes standby.signal and primary_conninfo), then run as a hot standby.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_basebackup -h postgres -U replicator -D "$PGDATA" -R -X stream -c fast; do
        echo "replica: waiting for the primary" >&2
        rm -rf "${PGDATA:?}"/*
        sleep 2
    done
    chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on
