-- Room for a re-cost to rewrite a page of lines in place (heap-only tuples, no index
-- writes): a sale backdated before thousands of lines moves every one of them, so
-- each page must hold a second version of its rows (fillfactor 50), not 15 % of them.
-- Applies to pages written from now on (VACUUM FULL or pg_repack rewrites old ones).
ALTER TABLE sale_lines SET (fillfactor = 50);
