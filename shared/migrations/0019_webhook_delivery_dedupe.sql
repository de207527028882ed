-- QuickBooks webhook deliveries stored once per distinct body. Intuit retries a delivery
-- until it gets a 200, and a signed body can be replayed: each copy used to add a row
-- with the whole raw body. Now a body is stored once, keyed by its SHA-256, and a
-- repeat only counts (received_count, last_received_at). Notifications keep their own
-- dedupe (qbo_notifications.dedupe_key).
ALTER TABLE qbo_deliveries ADD COLUMN IF NOT EXISTS body_sha256 bytea;
ALTER TABLE qbo_deliveries ADD COLUMN IF NOT EXISTS received_count int NOT NULL DEFAULT 1
    CHECK (received_count >= 1);
ALTER TABLE qbo_deliveries ADD COLUMN IF NOT EXISTS last_received_at timestamptz;

UPDATE qbo_deliveries SET body_sha256 = sha256(body) WHERE body_sha256 IS NULL;
UPDATE qbo_deliveries SET last_received_at = received_at WHERE last_received_at IS NULL;

-- Backfill: fold the copies of one body into its first row (notifications re-pointed to it).
CREATE TEMPORARY TABLE qbo_delivery_copies ON COMMIT DROP AS
SELECT body_sha256, min(id) AS keep, sum(received_count)::int AS received, max(last_received_at) AS last
FROM qbo_deliveries GROUP BY body_sha256 HAVING count(*) > 1;

UPDATE qbo_notifications n SET delivery_id = c.keep
FROM qbo_deliveries d JOIN qbo_delivery_copies c USING (body_sha256)
WHERE n.delivery_id = d.id AND d.id <> c.keep;

UPDATE qbo_deliveries d SET received_count = c.received, last_received_at = c.last
FROM qbo_delivery_copies c WHERE d.id = c.keep;

DELETE FROM qbo_deliveries d USING qbo_delivery_copies c WHERE d.body_sha256 = c.body_sha256 AND d.id <> c.keep;

ALTER TABLE qbo_deliveries ALTER COLUMN body_sha256 SET NOT NULL;
ALTER TABLE qbo_deliveries ALTER COLUMN last_received_at SET DEFAULT now();
ALTER TABLE qbo_deliveries ALTER COLUMN last_received_at SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS qbo_deliveries_body_sha256 ON qbo_deliveries (body_sha256);
