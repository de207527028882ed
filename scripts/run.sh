#!/usr/bin/env bash
# `make run`: every service under honcho. Without real QuickBooks credentials
# (QBO_CLIENT_ID unset) the ingest service talks to the local QuickBooks
# simulator, which starts with a demo company; without real Xero credentials
# (XERO_CLIENT_ID unset) to the local Xero simulator, with a demo organisation.
# The `demo` process connects whichever simulators run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export LOG_FORMAT="${LOG_FORMAT:-console}"
# The Sales tab (query, :8082) writes through the ingest API (:8081).
export CORS_ALLOWED_ORIGINS="${CORS_ALLOWED_ORIGINS:-http://127.0.0.1:8082,http://localhost:8082}"
# Per-installation secrets (created once by scripts/secrets.sh); values already in the
# environment win. The database and broker passwords are docker compose's: `make run` uses the
# local servers' URLs as they are.
bash scripts/secrets.sh var/secrets.env
compose_only=" POSTGRES_PASSWORD DATABASE_PASSWORD REPLICATION_PASSWORD AMQP_PASSWORD RABBITMQ_ERLANG_COOKIE "
while IFS= read -r line; do
    # Split at the first "=" only: `IFS='=' read` would drop a base64 key's trailing "=".
    name="${line%%=*}" value="${line#*=}"
    [[ -z "$name" || "$name" == \#* ]] && continue
    [[ "$compose_only" == *" $name "* ]] && continue
    [[ -n "${!name:-}" ]] || export "$name=$value"
done < var/secrets.env
# The Sales tab (query) sends manual sales and QuickBooks requests to the ingest API from the browser.
export INGEST_PUBLIC_URL="${INGEST_PUBLIC_URL:-http://127.0.0.1:${INGEST_PORT:-8081}}"
processes="ingest costing query"
if [[ -z "${QBO_CLIENT_ID:-}" ]]; then
    sim="http://127.0.0.1:${QBO_SIM_PORT:-8090}"
    export QBO_API_BASE="$sim" \
           QBO_OAUTH_AUTHORIZE_URL="$sim/appcenter/connect/oauth2" \
           QBO_OAUTH_TOKEN_URL="$sim/oauth2/v1/tokens/bearer" \
           QBO_OAUTH_REVOKE_URL="$sim/v2/oauth2/tokens/revoke" \
           QBO_CLIENT_ID=sim-client QBO_CLIENT_SECRET=sim-secret \
           QBO_WEBHOOK_VERIFIER_TOKEN="$QBO_SIM_VERIFIER_TOKEN" \
           QBO_CDC_INTERVAL_SECONDS="${QBO_CDC_INTERVAL_SECONDS:-60}"
    processes="$processes qbo-sim"
    echo "run: no QBO_CLIENT_ID set: using the local QuickBooks simulator at $sim with a demo company" >&2
else
    export DEMO_QUICKBOOKS=0
fi
if [[ -z "${XERO_CLIENT_ID:-}" ]]; then
    xsim="http://127.0.0.1:${XERO_SIM_PORT:-8091}"
    # The simulator signs its webhooks with this key and POSTs them to the ingest service.
    export XERO_SIM_WEBHOOK_KEY="${XERO_SIM_WEBHOOK_KEY:-sim-xero-webhook-key}" \
           XERO_SIM_WEBHOOK_URL="${XERO_SIM_WEBHOOK_URL:-http://127.0.0.1:${INGEST_PORT:-8081}/webhooks/xero}"
    export XERO_API_BASE="$xsim" XERO_IDENTITY_BASE="$xsim" \
           XERO_OAUTH_AUTHORIZE_URL="$xsim/identity/connect/authorize" \
           XERO_CLIENT_ID=SIMXEROCLIENTID0000000000000000 XERO_CLIENT_SECRET=sim-xero-secret \
           XERO_WEBHOOK_KEY="$XERO_SIM_WEBHOOK_KEY" \
           XERO_SYNC_INTERVAL_SECONDS="${XERO_SYNC_INTERVAL_SECONDS:-60}"
    processes="$processes xero-sim"
    echo "run: no XERO_CLIENT_ID set: using the local Xero simulator at $xsim with a demo organisation" >&2
else
    export DEMO_XERO=0
fi
if [[ "$processes" == *-sim* ]]; then
    processes="$processes demo"
fi
# shellcheck disable=SC2086 # the process names are words
exec .venv/bin/python -m honcho start -f Procfile $processes
