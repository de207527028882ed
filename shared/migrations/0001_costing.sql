-- Costing state. Everything is per tenant; money and quantities are numeric.
-- The FIFO positions (d_start/d_end on lines, s_start/s_end on lots) lay demand
-- and supply of a product on one quantity axis; see services/costing/fifo.py.

CREATE TABLE IF NOT EXISTS tenants (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    home_currency char(3) NOT NULL DEFAULT 'USD',
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A product row exists as soon as anything names its sku (a lot or a sale line);
-- it is "defined" once a product.upserted event has arrived. Lines of an
-- undefined product are unmapped.
CREATE TABLE IF NOT EXISTS products (
    id             bigserial PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    sku            text NOT NULL,
    defined        boolean NOT NULL DEFAULT false,
    name           text,
    qbo_item_id    text,
    standard_cost  numeric CHECK (standard_cost >= 0),
    version        bigint,
    -- Aggregates kept under the product row lock:
    received_qty   numeric NOT NULL DEFAULT 0,   -- Σ quantity of received (non-return) lots
    received_value numeric NOT NULL DEFAULT 0,   -- Σ quantity × unit_cost of those lots
    wac            numeric NOT NULL DEFAULT 0,   -- weighted average cost (or standard cost)
    has_cost_basis boolean NOT NULL DEFAULT false,
    demand_total   numeric NOT NULL DEFAULT 0,   -- end of the demand axis
    supply_total   numeric NOT NULL DEFAULT 0,   -- end of the supply axis
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sku),
    UNIQUE (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS products_qbo_item ON products (tenant_id, qbo_item_id) WHERE qbo_item_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS sales (
    id                bigserial PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    source            text NOT NULL CHECK (source IN ('quickbooks', 'manual')),
    type              text NOT NULL CHECK (type IN ('invoice', 'sales_receipt', 'credit_memo')),
    external_id       text NOT NULL,
    status            text NOT NULL DEFAULT 'posted' CHECK (status IN ('posted', 'voided', 'deleted')),
    version           bigint,
    doc_number        text,
    txn_date          date,
    source_created_at timestamptz,
    customer          text,
    currency          text,
    exchange_rate     numeric,
    revenue           numeric NOT NULL DEFAULT 0,
    cost              numeric NOT NULL DEFAULT 0,
    has_shortage      boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source, type, external_id),
    UNIQUE (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS sale_lines (
    id            bigserial PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    sale_id       bigint NOT NULL,
    line_no       int NOT NULL,
    sku           text,
    product_id    bigint,
    description   text,
    kind          text NOT NULL CHECK (kind IN ('inventory', 'non_inventory', 'service', 'shipping', 'unmapped')),
    quantity      numeric NOT NULL CHECK (quantity >= 0),
    revenue       numeric NOT NULL DEFAULT 0,
    cost          numeric NOT NULL DEFAULT 0,
    shortage_qty  numeric NOT NULL DEFAULT 0 CHECK (shortage_qty >= 0),
    shortage_cost numeric NOT NULL DEFAULT 0,
    flags         text[] NOT NULL DEFAULT '{}',
    costed        boolean NOT NULL DEFAULT false,  -- has had a cost computed at least once
    -- Demand membership and order key (copied from the sale so one index orders the axis;
    -- byte-order collation so the order is the same in SQL and in Python).
    in_demand     boolean NOT NULL DEFAULT false,
    txn_date      date,
    source_created_at timestamptz,
    source        text COLLATE "C",
    external_id   text COLLATE "C",
    sale_type     text COLLATE "C",
    candidate     boolean NOT NULL DEFAULT false, -- names a sku and is an inventory (or unmapped) line
    gross_revenue numeric NOT NULL DEFAULT 0,     -- signed revenue of the posted line
    d_start       numeric,
    d_end         numeric,
    UNIQUE (sale_id, line_no),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    CHECK (NOT in_demand OR product_id IS NOT NULL)
);
-- The demand order of a product: (txn_date, source_created_at, source, external_id, sale_type, line_no).
CREATE INDEX IF NOT EXISTS sale_lines_demand_order ON sale_lines
    (product_id, txn_date, source_created_at, source, external_id, sale_type, line_no) WHERE in_demand;
CREATE INDEX IF NOT EXISTS sale_lines_demand_end ON sale_lines (product_id, d_end) WHERE in_demand;
CREATE INDEX IF NOT EXISTS sale_lines_shortage ON sale_lines (product_id) WHERE shortage_qty > 0;
CREATE INDEX IF NOT EXISTS sale_lines_product ON sale_lines (product_id);
CREATE INDEX IF NOT EXISTS sale_lines_sku ON sale_lines (tenant_id, sku) WHERE sku IS NOT NULL;

CREATE TABLE IF NOT EXISTS lots (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    product_id  bigint NOT NULL,
    lot_number  text COLLATE "C" NOT NULL,
    is_return   boolean NOT NULL DEFAULT false,
    return_line_id bigint REFERENCES sale_lines (id) ON DELETE CASCADE,
    quantity    numeric NOT NULL CHECK (quantity >= 0),
    unit_cost   numeric NOT NULL CHECK (unit_cost >= 0),
    received_at timestamptz NOT NULL,
    version     bigint,
    s_start     numeric,
    s_end       numeric,
    remaining   numeric NOT NULL,
    UNIQUE (product_id, lot_number),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    CHECK (remaining >= 0 AND remaining <= quantity)
);
CREATE INDEX IF NOT EXISTS lots_supply_order ON lots (product_id, received_at, lot_number);
CREATE INDEX IF NOT EXISTS lots_supply_end ON lots (product_id, s_end);

CREATE TABLE IF NOT EXISTS allocations (
    tenant_id uuid NOT NULL,
    line_id   bigint NOT NULL REFERENCES sale_lines (id) ON DELETE CASCADE,
    lot_id    bigint NOT NULL,
    quantity  numeric NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (line_id, lot_id),
    FOREIGN KEY (tenant_id, lot_id) REFERENCES lots (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS allocations_lot ON allocations (lot_id);

-- Why a cost moved: one row per change of an already-costed line's cost.
CREATE TABLE IF NOT EXISTS cost_revisions (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    sale_id    bigint NOT NULL,
    line_no    int NOT NULL,
    old_cost   numeric NOT NULL,
    new_cost   numeric NOT NULL,
    cause      text NOT NULL,
    event_id   uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS cost_revisions_sale ON cost_revisions (sale_id, id);

-- Every version of a sale received, applied or not.
CREATE TABLE IF NOT EXISTS sale_versions (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    sale_id     bigint NOT NULL,
    version     bigint,
    event_id    uuid NOT NULL,
    event_type  text NOT NULL,
    applied     boolean NOT NULL,
    note        text,
    received_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS sale_versions_sale ON sale_versions (sale_id, id);

-- The consumer's inbox: an event id is recorded in the transaction that applies it.
CREATE TABLE IF NOT EXISTS processed_events (
    event_id     uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    event_type   text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS processed_events_tenant ON processed_events (tenant_id);

-- Messages the consumer gave up on (also in the dead-letter queue), for status and redrive.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigserial PRIMARY KEY,
    event_id    uuid,
    tenant_id   uuid,
    routing_key text,
    reason      text NOT NULL,
    body        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    redriven_at timestamptz
);
CREATE INDEX IF NOT EXISTS dead_letters_event ON dead_letters (event_id);
