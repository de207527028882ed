-- QuickBooks Online channel: connected companies, raw webhook deliveries, the
-- notification inbox, the last version seen of each entity, and the item cache.

-- A realm is connected to exactly one tenant. Tokens are AES-GCM ciphertext (AAD = realm id).
CREATE TABLE IF NOT EXISTS qbo_connections (
    realm_id          text PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    access_token      bytea NOT NULL,
    refresh_token     bytea NOT NULL,
    access_expires_at timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'connected' CHECK (status IN ('connected', 'reconnect_required', 'disconnected')),
    cdc_watermark     timestamptz,          -- QuickBooks' clock at the last complete catch-up
    token_refreshes   bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS qbo_connections_tenant ON qbo_connections (tenant_id);

-- Every signed delivery, raw, as received (kept for inspection; unparseable ones flagged).
CREATE TABLE IF NOT EXISTS qbo_deliveries (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    content_type text,
    body         bytea NOT NULL,
    parse_error  text
);

-- One row per notification; the unique key absorbs Intuit's retries and duplicates.
CREATE TABLE IF NOT EXISTS qbo_notifications (
    id          bigserial PRIMARY KEY,
    dedupe_key  text NOT NULL UNIQUE,
    delivery_id bigint NOT NULL REFERENCES qbo_deliveries (id),
    realm_id    text NOT NULL,
    entity      text NOT NULL,           -- PascalCase: Invoice, SalesReceipt, CreditMemo, Item, ...
    entity_id   text NOT NULL,
    operation   text NOT NULL,           -- Create, Update, Delete, Void, Merge, Emailed
    deleted_id  text,                    -- Merge: the item merged away
    occurred_at timestamptz,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'done', 'ignored', 'failed')),
    claimed_at  timestamptz,
    attempts    int NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    handled_at  timestamptz
);
CREATE INDEX IF NOT EXISTS qbo_notifications_open ON qbo_notifications (realm_id, id)
    WHERE status IN ('pending', 'processing');

-- The newest version of each entity turned into events, with its raw JSON (to re-map later).
CREATE TABLE IF NOT EXISTS qbo_entities (
    realm_id     text NOT NULL,
    entity       text NOT NULL,
    entity_id    text NOT NULL,
    sync_token   bigint,
    remap_seq    int NOT NULL DEFAULT 0,  -- re-normalizations of this SyncToken after a mapping change
    deleted      boolean NOT NULL DEFAULT false,
    body         jsonb,
    item_ids     text[] NOT NULL DEFAULT '{}',
    last_updated timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, entity, entity_id)
);
CREATE INDEX IF NOT EXISTS qbo_entities_items ON qbo_entities USING gin (item_ids);

CREATE TABLE IF NOT EXISTS qbo_items (
    realm_id    text NOT NULL,
    item_id     text NOT NULL,
    name        text,
    sku         text,
    type        text,
    active      boolean NOT NULL DEFAULT true,
    merged_into text,
    sync_token  bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (realm_id, item_id)
);
