-- PostgreSQL only: the ledger's chain function (one round trip per chain).
-- SQLite runs in-process, where round trips cost nothing; the Rust code
-- applies chains there. Kept so both directories hold the same migrations.
SELECT 1;
