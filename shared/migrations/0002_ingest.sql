-- Ingest: API keys, the catalog of facts entered over HTTP (authoritative for
-- validation and versions), the append-only event log, its outbox, and
-- idempotency keys.

CREATE TABLE IF NOT EXISTS api_keys (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    prefix     text NOT NULL UNIQUE,          -- shown to people; the secret is never stored
    key_hash   bytea NOT NULL,                -- sha256 of the whole key
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE IF NOT EXISTS catalog_products (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    sku           text NOT NULL,
    name          text NOT NULL,
    qbo_item_id   text,
    standard_cost numeric,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku)
);

CREATE TABLE IF NOT EXISTS catalog_lots (
    tenant_id   uuid NOT NULL,
    sku         text NOT NULL,
    lot_number  text NOT NULL,
    quantity    numeric NOT NULL,
    unit_cost   numeric NOT NULL,
    received_at timestamptz NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku, lot_number),
    FOREIGN KEY (tenant_id, sku) REFERENCES catalog_products (tenant_id, sku)
);

CREATE TABLE IF NOT EXISTS manual_sales (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    reference  text NOT NULL,
    type       text NOT NULL,
    status     text NOT NULL DEFAULT 'posted',
    version    bigint NOT NULL,
    entered_at timestamptz NOT NULL,          -- first entered: the FIFO tie-breaker
    body       jsonb NOT NULL,                -- the current request body
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, reference)
);

-- Every accepted fact, exactly as published. Append-only.
CREATE TABLE IF NOT EXISTS event_log (
    seq         bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    tenant_id   uuid NOT NULL,
    event_type  text NOT NULL,
    source      text NOT NULL,                -- manual | quickbooks
    occurred_at timestamptz NOT NULL,
    correlation_id text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    body        bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS event_log_tenant ON event_log (tenant_id, recorded_at);

-- Log rows not yet confirmed by the broker; the relay deletes a row after the confirm.
CREATE TABLE IF NOT EXISTS outbox (
    seq        bigint PRIMARY KEY REFERENCES event_log (seq),
    attempts   int NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant_id    uuid NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       int NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
