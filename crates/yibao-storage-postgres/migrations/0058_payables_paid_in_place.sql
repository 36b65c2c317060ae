-- A payable's payment is written in place (a heap-only update) instead of as a new row version that
-- every index of payables must point at. PostgreSQL can update a row in place only when no
-- indexed column changes, and it counts a column that a partial index's predicate names: four
-- indexes named `status`, so every payment added three index entries (the key, the person's and
-- the one-current index). Now no index names `status`:
-- * the one-current rule reads a stored column computed from the status (a superseded or
--   cancelled payable is not current), which a payment does not change;
-- * the lock indexes hold the rows with a lock holder or an expiry. A lock sets both; a release,
--   an expiry or a payment clears both. A locked back payment cancelled as moot keeps them and
--   stays in these small indexes, which is harmless: every statement that reads them also asks
--   for the status, and names the holder or compares the expiry, which the planner proves
--   implies the predicate;
-- * the open back-payments index holds every back payment (a few rows a person at most); its
--   statements still ask for the open ones.
-- And each page of payables keeps a tenth free, so that the new version fits beside the old one.
-- Measured against `yibao serve` with 150 000 payers and 64 reporting workers (BENCHMARKS.md,
-- session 39): every payment's update in place, against none before; PostgreSQL's CPU per
-- report 5-10 % less and reports a second 5-9 % more; an assessment about 3 % slower. What is
-- stored, refused and answered is unchanged. Adding the column rewrites payables once (on an
-- upgrade, about 10 s per million rows, with the table locked meanwhile: docs/operations.md).
ALTER TABLE payables SET (fillfactor = 90);
ALTER TABLE payables ADD COLUMN is_current BOOLEAN
    GENERATED ALWAYS AS (status NOT IN ('superseded', 'cancelled')) STORED;
DROP INDEX payables_one_current;
CREATE UNIQUE INDEX payables_one_current ON payables (region_code, fee_year, id_number, coalesce(buys_back_year, 0))
    WHERE is_current;
DROP INDEX payables_locked;
CREATE INDEX payables_locked ON payables (locked_by) WHERE locked_by IS NOT NULL;
DROP INDEX payables_lock_expiry;
CREATE INDEX payables_lock_expiry ON payables (locked_until) WHERE locked_until IS NOT NULL;
DROP INDEX payables_open_back_payments;
CREATE INDEX payables_open_back_payments ON payables (region_code, id_number) WHERE buys_back_year IS NOT NULL;
