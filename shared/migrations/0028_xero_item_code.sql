-- Xero as the second sales channel (issue 22, docs/channels.md "Adding a provider").
-- A product's explicit Xero item code (what Xero lines carry as ItemCode). NULL: the default,
-- the product whose sku equals the ItemCode.
ALTER TABLE catalog_products ADD COLUMN IF NOT EXISTS xero_item_code text;
