-- Searches by ID number in the regions a channel serves (issue 14): `id_number = $1 AND
-- region_code IN (...)`, on payables and on receipts. Without statistics (a table freshly
-- loaded, autovacuum off) PostgreSQL took the unique index led by the region for payables and
-- read every entry of the region (1.4 ms instead of 0.08 ms over 37 000 payables). Indexes led
-- by the ID number, then the region, serve the whole condition, and a planner takes them with
-- statistics or without. Each replaces the index on the ID number alone, which it contains.
CREATE INDEX payables_by_person_region ON payables (id_number, region_code);
DROP INDEX payables_by_person;
CREATE INDEX receipts_by_person_region ON receipts (id_number, region_code);
DROP INDEX receipts_by_person;
