#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ answer at the addresses the project is configured for.
#
#   scripts/infra.sh run    checks DATABASE_URL's server and AMQP_URL's broker
#   scripts/infra.sh test   checks TEST_DATABASE_URL's server and AMQP_URL's broker
#
# For each server: if it already answers, return at once (no sleeps). Otherwise start
# the machine's own server if one is installed (and the URL points at it), else
# `docker compose -f deploy/compose.dev-infra.yml up -d` the matching service when a Docker engine answers,
# then wait a bounded time. If nothing works, print ONE line saying what to install
# and exit 1. No database is created or touched here.
#
# Testing knobs: PARTSEMBLE_NO_LOCAL_START=1 skips starting local servers,
# PARTSEMBLE_NO_DOCKER=1 skips the Docker fallback.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEFAULT_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/partsemble"
DEFAULT_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/partsemble_test"
DEFAULT_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/"
WAIT_SECONDS="${PARTSEMBLE_INFRA_WAIT:-90}"

log() { echo "infra: $*" >&2; }
die() { echo "$*" >&2; exit 1; }

# Print "HOST PORT" of a URL like scheme://user:pass@host:port/path?query.
# Empty host -> 127.0.0.1, missing port -> $2. Only the first of several hosts is used.
url_host_port() {
    local url="$1" default_port="$2" rest hostport host port
    rest="${url#*://}"
    rest="${rest%%[/?#]*}"          # authority only
    hostport="${rest##*@}"          # drop user:password@
    hostport="${hostport%%,*}"      # first host of a multi-host URL
    if [[ "$hostport" =~ ^\[([^]]*)\](:([0-9]+))?$ ]]; then   # [ipv6]:port
        host="${BASH_REMATCH[1]}" port="${BASH_REMATCH[3]}"
    elif [[ "$hostport" =~ ^([^:]*)(:([0-9]+))?$ ]]; then
        host="${BASH_REMATCH[1]}" port="${BASH_REMATCH[3]}"
    else
        host="" port=""
    fi
    echo "${host:-127.0.0.1} ${port:-$default_port}"
}

# HOST:PORT for messages ([HOST]:PORT for IPv6).
addr() {
    if [[ "$1" == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi
}

# True when HOST names this machine (only then can a local server or Docker help).
is_local_host() {
    case "$1" in
        127.*|localhost|::1|0.0.0.0) return 0 ;;
        *) return 1 ;;
    esac
}

# One quick TCP connect (refused at once when down; 2 s cap for unroutable hosts).
tcp_open() {
    # shellcheck disable=SC2016  # $1/$2 are expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# PostgreSQL answers (accepting connections)? pg_isready when present, else TCP.
pg_up() {
    if command -v pg_isready >/dev/null; then
        pg_isready -q -h "$1" -p "$2" -t 2
    else
        tcp_open "$1" "$2"
    fi
}

# RabbitMQ's AMQP port answers?
amqp_up() { tcp_open "$1" "$2"; }

# Poll CHECK HOST PORT every 0.5 s for at most $WAIT_SECONDS; true once it answers.
wait_until() {
    local check="$1" host="$2" port="$3" deadline=$((SECONDS + WAIT_SECONDS))
    until "$check" "$host" "$port"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# True when a Docker engine answers and a compose command exists; sets COMPOSE.
docker_available() {
    [[ "${PARTSEMBLE_NO_DOCKER:-}" != 1 ]] || return 1
    command -v docker >/dev/null || return 1
    timeout 10 docker info >/dev/null 2>&1 || return 1
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null; then
        COMPOSE=(docker-compose)
    else
        return 1
    fi
}

# Name (VERSION CLUSTER) of the installed local PostgreSQL cluster listening on PORT.
local_pg_cluster() {
    local found
    command -v pg_lsclusters >/dev/null || return 1
    found="$(pg_lsclusters --no-header 2>/dev/null | awk -v p="$1" '$3 == p && !n++ { print $1, $2 }')"
    [[ -n "$found" ]] && echo "$found"
}

# Start local PostgreSQL cluster VERSION CLUSTER (pg_ctlcluster waits for startup).
start_local_pg() {
    local version="$1" cluster="$2"
    log "starting local PostgreSQL cluster $version/$cluster"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2
}

# Start the local RabbitMQ node (it boots in the background, ~10-20 s).
start_local_rabbitmq() {
    log "starting local RabbitMQ (takes ~10-20 s)"
    rabbitmq-server -detached >&2 || true
}

# Once the AMQP port answers, let rabbitmqctl confirm the app finished booting (bounded).
await_rabbitmq_app() {
    timeout 30 rabbitmqctl -q -t 30 await_startup >/dev/null 2>&1 || true
}

# Bring up compose service NAME and wait for it; true when HOST:PORT answers.
start_docker_service() {
    local name="$1" check="$2" host="$3" port="$4"
    log "starting '$name' with ${COMPOSE[*]}"
    "${COMPOSE[@]}" -f deploy/compose.dev-infra.yml up -d "$name" >&2 || return 1
    wait_until "$check" "$host" "$port"
}

# Step: PostgreSQL reachable at the host/port of URL $1.
ensure_postgres() {
    local host port cluster
    read -r host port < <(url_host_port "$1" 5432)
    pg_up "$host" "$port" && return 0                       # fast path

    if is_local_host "$host"; then
        # Local server installed with a cluster on that port?
        if [[ "${PARTSEMBLE_NO_LOCAL_START:-}" != 1 ]] && cluster="$(local_pg_cluster "$port")"; then
            # shellcheck disable=SC2086  # "$cluster" is "VERSION NAME": two arguments
            if start_local_pg $cluster; then
                wait_until pg_up "$host" "$port" && return 0
            fi
            die "PostgreSQL cluster ${cluster/ //} was started but $(addr "$host" "$port") is still not reachable after ${WAIT_SECONDS} s: see /var/log/postgresql/ and 'pg_lsclusters'"
        fi
        # Docker: compose publishes PostgreSQL on 5432 only.
        if [[ "$port" == 5432 ]] && docker_available; then
            start_docker_service postgres pg_up "$host" "$port" && return 0
            die "PostgreSQL was started with Docker but $(addr "$host" "$port") is still not reachable after ${WAIT_SECONDS} s: see '${COMPOSE[*]} -f deploy/compose.dev-infra.yml logs postgres'"
        fi
        if command -v pg_lsclusters >/dev/null && [[ "${PARTSEMBLE_NO_LOCAL_START:-}" != 1 ]]; then
            die "PostgreSQL is not reachable at $(addr "$host" "$port"), no local cluster is set up on port $port (see pg_lsclusters) and Docker is not available: use the port of a local cluster in the database URL, or install Docker"
        fi
        die "PostgreSQL 15 is not reachable at $(addr "$host" "$port") and neither a local server nor Docker is available: install postgresql (apt-get install postgresql) or Docker"
    fi
    die "PostgreSQL is not reachable at $(addr "$host" "$port") (from the database URL): start that server or point DATABASE_URL/TEST_DATABASE_URL at one that runs"
}

# Step: RabbitMQ reachable at the host/port of URL $1.
ensure_rabbitmq() {
    local host port
    read -r host port < <(url_host_port "$1" 5672)
    amqp_up "$host" "$port" && return 0                     # fast path

    if is_local_host "$host"; then
        # Local server installed and listening on its usual port?
        if [[ "${PARTSEMBLE_NO_LOCAL_START:-}" != 1 ]] && command -v rabbitmq-server >/dev/null \
            && [[ "$port" == "${RABBITMQ_NODE_PORT:-5672}" ]]; then
            start_local_rabbitmq
            wait_until amqp_up "$host" "$port" && await_rabbitmq_app && return 0
            die "RabbitMQ was started but $(addr "$host" "$port") is still not reachable after ${WAIT_SECONDS} s: see /var/log/rabbitmq/ and 'rabbitmqctl status'"
        fi
        # Docker: compose publishes AMQP on 5672 only.
        if [[ "$port" == 5672 ]] && docker_available; then
            start_docker_service rabbitmq amqp_up "$host" "$port" && return 0
            die "RabbitMQ was started with Docker but $(addr "$host" "$port") is still not reachable after ${WAIT_SECONDS} s: see '${COMPOSE[*]} -f deploy/compose.dev-infra.yml logs rabbitmq'"
        fi
        if command -v rabbitmq-server >/dev/null && [[ "${PARTSEMBLE_NO_LOCAL_START:-}" != 1 ]]; then
            die "RabbitMQ is not reachable at $(addr "$host" "$port"), the local server listens on ${RABBITMQ_NODE_PORT:-5672} instead and Docker is not available: use port ${RABBITMQ_NODE_PORT:-5672} in AMQP_URL, or install Docker"
        fi
        die "RabbitMQ 3.10 is not reachable at $(addr "$host" "$port") and neither a local server nor Docker is available: install rabbitmq-server (apt-get install rabbitmq-server) or Docker"
    fi
    die "RabbitMQ is not reachable at $(addr "$host" "$port") (from AMQP_URL): start that broker or point AMQP_URL at one that runs"
}

main() {
    local mode="${1:-run}"
    case "$mode" in
        run)  ensure_postgres "${DATABASE_URL:-$DEFAULT_DATABASE_URL}" ;;
        test) ensure_postgres "${TEST_DATABASE_URL:-$DEFAULT_TEST_DATABASE_URL}" ;;
        *)    die "usage: $0 run|test" ;;
    esac
    ensure_rabbitmq "${AMQP_URL:-$DEFAULT_AMQP_URL}"
}

main "$@"
