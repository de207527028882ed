-- pgbench baseline: the database work of costing one in-order 2-line sale, with
-- nothing else (no Python, no broker). Run by bench/costing_bench.py against the
-- scratch tables pgb_* it creates in the bench database:
--   pgbench -n -M prepared -c 2 -j 2 -T 10 -f bench/pgbench_sale.sql partsemble_bench
-- Every transaction locks the same product row, like the engine's in-order sales
-- of one product, so concurrent clients serialize on it as the consumers do.
BEGIN;
SELECT id, demand_total FROM pgb_products WHERE id = 1 FOR UPDATE;
UPDATE pgb_lots SET remaining = remaining - 1 WHERE id = 1;
UPDATE pgb_lots SET remaining = remaining - 1 WHERE id = 2;
INSERT INTO pgb_lines (product_id, quantity, cost, d_start, d_end) VALUES (1, 2, 2.74, 0, 2) RETURNING id AS line_id \gset
INSERT INTO pgb_allocations (line_id, lot_id, quantity) VALUES (:line_id, 1, 1);
INSERT INTO pgb_allocations (line_id, lot_id, quantity) VALUES (:line_id, 2, 1);
COMMIT;
