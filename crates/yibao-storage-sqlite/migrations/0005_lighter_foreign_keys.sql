-- PostgreSQL drops two per-row foreign-key checks here for import speed; SQLite's checks are
-- cheap and dropping a foreign key there needs a table rebuild, so nothing changes.
SELECT 1;
