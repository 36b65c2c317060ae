-- Back-payment (补缴修复, issue 19): a payable that buys back one gap year of a person. It belongs
-- to the fee year being collected (fee_year), costs that year's individual standard without
-- subsidy, and buys no cover for the gap year: only a shorter wait for fee_year's cover. NULL on
-- every other payable (the year's own contribution). A person has at most one current payable per
-- fee year and bought-back year, as before at most one contribution per fee year.
ALTER TABLE payables ADD COLUMN buys_back_year INTEGER
    CONSTRAINT payables_buys_back_an_earlier_year CHECK (buys_back_year IS NULL OR buys_back_year < fee_year);
DROP INDEX payables_one_current;
CREATE UNIQUE INDEX payables_one_current ON payables (fee_year, id_number, coalesce(buys_back_year, 0))
    WHERE status NOT IN ('superseded', 'cancelled');
-- The back-payments still open, cancelled in the transaction that pays their year's contribution.
CREATE INDEX payables_open_back_payments ON payables (region_code, id_number)
    WHERE buys_back_year IS NOT NULL AND status IN ('unpaid', 'exempt');
-- The receipt of a back-payment says which year it bought back.
ALTER TABLE receipts ADD COLUMN buys_back_year INTEGER;
